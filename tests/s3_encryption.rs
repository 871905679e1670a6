//! Encryption at rest in S3: with `AWS_SERVER_SIDE_ENCRYPTION` (and, for SSE-KMS,
//! `AWS_SSE_KMS_KEY_ID`) every object the ingestor stores asks S3 to encrypt it — each PUT
//! carries the headers, as a recording proxy between the ingestor and a real S3 server
//! (s3s-fs) sees them, the raw archive's as the lake files' — and the lake still holds every
//! frame once.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn every_put_asks_for_sse_s3_or_sse_kms_and_every_frame_lands_once() {
    let s3 = S3Server::start("sse").await;
    let proxy = RecordingProxy::start(s3.port).await;
    let key = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    for (case, settings, expected) in [
        (
            "sse-s3",
            vec![("AWS_SERVER_SIDE_ENCRYPTION", "AES256")],
            vec!["x-amz-server-side-encryption: aes256".to_owned()],
        ),
        (
            "sse-kms",
            vec![
                ("AWS_SERVER_SIDE_ENCRYPTION", "aws:kms"),
                ("AWS_SSE_KMS_KEY_ID", key),
            ],
            vec![
                "x-amz-server-side-encryption: aws:kms".to_owned(),
                format!(
                    "x-amz-server-side-encryption-aws-kms-key-id: {}",
                    key.to_ascii_lowercase()
                ),
            ],
        ),
    ] {
        let mut env = TestEnv::new_s3(case, &s3).await;
        for (k, v) in env.lake_env.iter_mut() {
            if k == "AWS_ENDPOINT" {
                *v = format!("http://127.0.0.1:{}", proxy.port);
            }
        }
        env.lake_env.extend(
            settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let report = env.sim(&small_seed(6, 100, 3)).await;
        env.ingest_until_idle(&["--max-age", "1s"]).await;
        assert_exactly_once(&[&report], &env.committed_frames().await);

        // This lake's objects: under its prefix in the bucket.
        let id = format!(
            "/{}/",
            env.lake_url
                .trim_start_matches("s3://")
                .trim_end_matches('/')
        );
        let puts: Vec<String> = proxy
            .requests()
            .into_iter()
            .filter(|h| h.starts_with("PUT ") && h.contains(&id))
            .map(|h| h.to_ascii_lowercase())
            .collect();
        assert!(
            !puts.is_empty(),
            "{case}: no PUT of this lake went through the proxy"
        );
        assert!(
            puts.iter().any(|p| p.contains("/raw/topic"))
                && puts.iter().any(|p| p.contains("/procedure_telemetry/")),
            "{case}: the lake files and the raw archive both go through the proxy"
        );
        for put in &puts {
            for header in &expected {
                assert!(
                    put.lines().any(|l| l.trim() == header),
                    "{case}: a PUT without `{header}`:\n{put}"
                );
            }
        }
    }
}
