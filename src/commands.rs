//! One module per subcommand, each with one entry, `run(args)`. A command imports the options
//! (`cli`), the shared set-up (`setup`), the HTTP endpoints (`http`) and the library crates —
//! never another command: what two commands share lives in `setup`.

pub mod archive;
pub mod auth_token;
pub mod bench;
pub mod compact;
pub mod create_topics;
pub mod demo;
pub mod export;
pub mod iceberg;
pub mod ingest;
pub mod migrate;
pub mod replay;
pub mod sim;
pub mod sweep;
pub mod verify;
pub mod warehouse;
