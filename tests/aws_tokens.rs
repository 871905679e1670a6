//! The MSK IAM and RDS IAM tokens, against AWS's own signers: for fixed credentials, region and
//! signing time, `surgstream auth-token` prints the very bytes `aws-msk-iam-sasl-signer-python`
//! and boto3's `generate_db_auth_token` make — with the credentials taken from each source of
//! the SDK's chain that botocore's chain reads too (environment, profile files, ECS container
//! endpoint), and from a web identity token exchanged at STS (moto's). No AWS account: the
//! signatures are compared, not presented.

mod common;

use std::time::Duration;

use common::*;

const SIGNING_TIME: &str = "2026-12-08T01:34:10Z";
const USER_AGENT: &str = concat!("surgstream/", env!("CARGO_PKG_VERSION"));

async fn ours(home: &std::path::Path, vars: &[(&str, String)], args: &[&str]) -> String {
    let out = aws_run(BIN, args, home, vars, Duration::from_secs(60)).await;
    ok_stdout(&out, &format!("surgstream {args:?}"))
}

async fn theirs(home: &std::path::Path, vars: &[(&str, String)], args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/aws_reference.py");
    let mut all = vec![script];
    all.extend_from_slice(args);
    let out = aws_run(aws_python(), &all, home, vars, Duration::from_secs(60)).await;
    ok_stdout(&out, &format!("aws_reference.py {args:?}"))
}

/// The MSK and RDS tokens of both signers for the credentials `vars` and `home` give; both
/// must be equal, and signed with `access_key`.
async fn same_tokens(
    what: &str,
    home: &std::path::Path,
    vars: &[(&str, String)],
    access_key: &str,
) {
    let msk = ours(
        home,
        vars,
        &[
            "auth-token",
            "--msk",
            "--region",
            "eu-west-1",
            "--signing-time",
            SIGNING_TIME,
        ],
    )
    .await;
    let reference = theirs(home, vars, &["msk", "eu-west-1", SIGNING_TIME, USER_AGENT]).await;
    let reference_token = reference.lines().next().expect("a token line");
    assert_eq!(
        msk,
        reference_token,
        "{what}: the MSK tokens differ:\n ours:   {}\n theirs: {}",
        decode_msk_token(&msk),
        decode_msk_token(reference_token)
    );
    let url = decode_msk_token(&msk);
    let credential = token_param(&url, "X-Amz-Credential").expect("a credential");
    assert_eq!(
        credential,
        format!("{access_key}/20261208/eu-west-1/kafka-cluster/aws4_request"),
        "{what}: signed with another key"
    );
    // botocore's own expiry: the signing time plus 15 minutes, in ms.
    let expiry: i64 = reference
        .lines()
        .nth(1)
        .expect("an expiry")
        .parse()
        .expect("ms");
    assert_eq!(expiry, 1_796_693_650_000 + 900_000);

    let rds = ours(
        home,
        vars,
        &[
            "auth-token",
            "--rds",
            "--host",
            "surgstream.c9akciq32.eu-west-1.rds.amazonaws.com",
            "--port",
            "5432",
            "--user",
            "ingest",
            "--signing-time",
            SIGNING_TIME,
        ],
    )
    .await;
    let reference = theirs(
        home,
        vars,
        &[
            "rds",
            "surgstream.c9akciq32.eu-west-1.rds.amazonaws.com",
            "5432",
            "ingest",
            "eu-west-1",
            SIGNING_TIME,
        ],
    )
    .await;
    assert_eq!(rds, reference, "{what}: the RDS tokens differ");
    assert!(
        rds.contains(&format!("X-Amz-Credential={access_key}%2F")),
        "{what}: {rds}"
    );
}

#[tokio::test]
async fn tokens_equal_aws_own_signers_for_each_credential_source() {
    let home = empty_home("tokens");

    // The environment, with a session token (temporary credentials) and without.
    let mut env = vec![
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
        (
            "AWS_SESSION_TOKEN",
            "FwoGZXIvYXdzEJr//////////wEaDM+tok/en=".to_owned(),
        ),
    ];
    same_tokens("environment, session token", &home, &env, ACCESS_KEY).await;
    env.pop();
    same_tokens("environment", &home, &env, ACCESS_KEY).await;

    // A profile of ~/.aws/credentials, named by AWS_PROFILE; its region in ~/.aws/config.
    let aws = home.join(".aws");
    std::fs::create_dir_all(&aws).expect("~/.aws");
    std::fs::write(
        aws.join("credentials"),
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default-secret\n\n\
         [ingest]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret/+=\n",
    )
    .expect("write credentials");
    std::fs::write(aws.join("config"), "[profile ingest]\nregion = eu-west-1\n").expect("config");
    same_tokens(
        "shared credentials file, AWS_PROFILE",
        &home,
        &[("AWS_PROFILE", "ingest".to_owned())],
        "AKIDPROFILE",
    )
    .await;
    same_tokens(
        "shared credentials file, default profile",
        &home,
        &[],
        "AKIDDEFAULT",
    )
    .await;
    std::fs::remove_dir_all(&aws).expect("remove ~/.aws");

    // The ECS task role: the container credentials endpoint.
    let ecs = ContainerCredentials::start(Duration::from_secs(3600), false).await;
    same_tokens(
        "ECS container credentials",
        &home,
        &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", ecs.uri())],
        "ASIACONTAINER1",
    )
    .await;
    assert!(
        ecs.served.load(std::sync::atomic::Ordering::SeqCst) >= 4,
        "both signers must have asked the container endpoint"
    );
    let _ = std::fs::remove_dir_all(&home);
}

/// IRSA on EKS: a web identity token file and a role, exchanged at STS (moto's, through
/// `AWS_ENDPOINT_URL_STS`) for temporary credentials, which sign the token.
#[tokio::test]
async fn web_identity_credentials_come_from_sts() {
    let moto = Moto::start().await;
    let home = empty_home("irsa");
    let token_file = home.join("eks-token");
    std::fs::write(
        &token_file,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzdXJnc3RyZWFtIn0.c2ln",
    )
    .expect("write the web identity token");
    let vars = [
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/surgstream-ingest".to_owned(),
        ),
        ("AWS_ROLE_SESSION_NAME", "surgstream-test".to_owned()),
        ("AWS_ENDPOINT_URL_STS", moto.endpoint()),
        ("AWS_REGION", "eu-west-1".to_owned()),
    ];
    for (who, token) in [
        (
            "surgstream",
            decode_msk_token(
                &ours(
                    &home,
                    &vars,
                    &["auth-token", "--msk", "--signing-time", SIGNING_TIME],
                )
                .await,
            ),
        ),
        (
            "aws-msk-iam-sasl-signer-python",
            decode_msk_token(
                theirs(
                    &home,
                    &vars,
                    &["msk", "eu-west-1", SIGNING_TIME, USER_AGENT],
                )
                .await
                .lines()
                .next()
                .expect("a token"),
            ),
        ),
    ] {
        let credential = token_param(&token, "X-Amz-Credential").expect("a credential");
        assert!(
            credential.starts_with("ASIA")
                && credential.ends_with("/eu-west-1/kafka-cluster/aws4_request"),
            "{who}: the token must be signed with STS's temporary key: {credential}"
        );
        assert!(
            token_param(&token, "X-Amz-Security-Token").is_some_and(|t| !t.is_empty()),
            "{who}: temporary credentials carry a session token: {token}"
        );
    }
    let _ = std::fs::remove_dir_all(&home);
}

/// No credentials anywhere: one line that says so and where the SDK looked.
#[tokio::test]
async fn no_credentials_is_one_clear_line() {
    let home = empty_home("nocreds");
    let out = aws_run(
        BIN,
        &["auth-token", "--msk", "--region", "eu-west-1"],
        &home,
        &[],
        Duration::from_secs(60),
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].starts_with("error: no AWS credentials")
            && lines[0].contains("AWS_WEB_IDENTITY_TOKEN_FILE"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&home);
}
