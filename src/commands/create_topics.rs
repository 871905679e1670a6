//! `surgstream create-topics`: the project's topics, created through the Kafka admin API (the
//! work is in `setup`, which `bench` shares for its own topics).

use anyhow::Result;

use crate::cli::TopicsArgs;
use crate::setup::create_topics;

/// Creates the four topics; an existing topic is fine.
pub async fn run(a: TopicsArgs) -> Result<()> {
    create_topics(a).await
}
