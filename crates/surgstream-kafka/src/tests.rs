use super::*;

fn write(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("surgstream-kafka-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(text: &str, vars: &[(&str, &str)]) -> Result<KafkaSettings, KafkaConfigError> {
    let path = write(&format!("{}.properties", text.len()), text);
    KafkaSettings::from_sources("b:9092", Some(&path), env(vars))
}

#[test]
fn a_command_config_file_sets_every_property_and_the_environment_wins() {
    let s = load(
        "# MSK over SCRAM\n\
         security.protocol = SASL_SSL\n\
         sasl.mechanism: SCRAM-SHA-512\n\
         ! another comment\n\
         sasl.username ingest\n\
         ssl.ca.location=/etc/ssl/ca.pem\n",
        &[
            ("SURGSTREAM_KAFKA_CLIENT_SASL_PASSWORD", "s3cret"),
            ("SURGSTREAM_KAFKA_CLIENT_SASL_USERNAME", "from-env"),
            ("SURGSTREAM_KAFKA_TIMEOUT", "10s"),
        ],
    )
    .expect("valid");
    let c = s.client_config();
    assert_eq!(c.get("bootstrap.servers"), Some("b:9092"));
    assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
    assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
    assert_eq!(c.get("ssl.ca.location"), Some("/etc/ssl/ca.pem"));
    assert_eq!(c.get("sasl.username"), Some("from-env"));
    assert_eq!(c.get("sasl.password"), Some("s3cret"));
    // Variables of other options are not client properties.
    assert_eq!(c.get("timeout"), None);
}

#[test]
fn secrets_never_reach_the_summary_the_debug_output_or_an_error() {
    let s = load(
        "sasl.password=hunter2\nssl.key.password=hunter3\nsasl.username=u\n",
        &[],
    )
    .expect("valid");
    for shown in [s.summary(), format!("{s:?}")] {
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(shown.contains("sasl.password=<redacted>"), "{shown}");
        assert!(shown.contains("sasl.username=u"), "{shown}");
    }
    // A secret whose reference cannot be resolved: the error names the property, not a value.
    let e = load("sasl.password=${env:NOPE_NOT_SET}\n", &[])
        .expect_err("unset variable")
        .to_string();
    assert!(
        e.contains("sasl.password") && e.contains("NOPE_NOT_SET"),
        "{e}"
    );
}

#[test]
fn secrets_come_from_the_environment_or_a_file_by_reference() {
    let secret = write("password", "from-a-file\n");
    let s = load(
        &format!(
            "sasl.username=${{env:KAFKA_USER}}\nsasl.password=${{file:{}}}\n",
            secret.display()
        ),
        &[("KAFKA_USER", "ingest")],
    )
    .expect("valid");
    assert_eq!(s.get("sasl.username"), Some("ingest"));
    assert_eq!(s.get("sasl.password"), Some("from-a-file"));
    let e = load("sasl.password=${file:/nonexistent/pw}\n", &[])
        .expect_err("missing file")
        .to_string();
    assert!(e.contains("/nonexistent/pw") && e.contains(":1"), "{e}");
    let e = load("sasl.password=${vault:x}\n", &[])
        .expect_err("unknown provider")
        .to_string();
    assert!(
        e.contains("is none of") && e.contains("aws-secretsmanager"),
        "{e}"
    );
}

#[test]
fn a_java_jaas_config_becomes_librdkafka_username_and_password() {
    let s = load(
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n  \
         username=\"ingest\" password=\"p=w:d\";\n",
        &[],
    )
    .expect("valid");
    assert_eq!(s.get("sasl.username"), Some("ingest"));
    assert_eq!(s.get("sasl.password"), Some("p=w:d"));
    assert_eq!(s.get("sasl.jaas.config"), None);
    let e = load(
        "sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required;\n",
        &[],
    )
    .expect_err("kerberos")
    .to_string();
    assert!(e.contains("Krb5LoginModule"), "{e}");
}

#[test]
fn unknown_reserved_and_java_only_properties_are_refused_with_where_they_were_set() {
    let e = load("\n\nsecurity.protocoll=SSL\n", &[])
        .expect_err("typo")
        .to_string();
    assert!(e.contains("security.protocoll") && e.contains(":3"), "{e}");
    let e = load("group.id=other\n", &[])
        .expect_err("reserved")
        .to_string();
    assert!(e.contains("--group"), "{e}");
    let e = load("bootstrap.servers=x:1\n", &[])
        .expect_err("reserved")
        .to_string();
    assert!(e.contains("--brokers"), "{e}");
    let e = load("ssl.truststore.location=/x.jks\n", &[])
        .expect_err("java only")
        .to_string();
    assert!(e.contains("ssl.ca.location"), "{e}");
    let e = KafkaSettings::from_sources(
        "b:1",
        None,
        env(&[("SURGSTREAM_KAFKA_CLIENT_SECURITY_PROTOCOL", "TLS")]),
    )
    .expect_err("bad value")
    .to_string();
    assert!(
        e.contains("SURGSTREAM_KAFKA_CLIENT_SECURITY_PROTOCOL") && e.contains("TLS"),
        "{e}"
    );
    let e = KafkaSettings::from_sources("b:1", Some(Path::new("/nonexistent.properties")), [])
        .expect_err("no file")
        .to_string();
    assert!(e.contains("/nonexistent.properties"), "{e}");
}

#[test]
fn tls_sasl_and_every_compression_codec_are_built_in() {
    // librdkafka refuses these values when built without OpenSSL, SASL or zstd: the features
    // this crate's users depend on.
    let sasl = |m| {
        [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", m),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
        ]
    };
    for props in [
        vec![("security.protocol", "SSL")],
        sasl("SCRAM-SHA-512").to_vec(),
        sasl("SCRAM-SHA-256").to_vec(),
        sasl("PLAIN").to_vec(),
        sasl("OAUTHBEARER").to_vec(),
        vec![("compression.codec", "zstd")],
        vec![("compression.codec", "lz4")],
        vec![("compression.codec", "snappy")],
        vec![("compression.codec", "gzip")],
    ] {
        let mut c = KafkaSettings::plaintext("127.0.0.1:1").client_config();
        for (k, v) in &props {
            c.set(*k, *v);
        }
        c.create::<rdkafka::producer::BaseProducer>()
            .unwrap_or_else(|e| panic!("{props:?}: {e}"));
    }
}

#[test]
fn the_command_line_refuses_secrets_and_reserved_properties() {
    let e = check_command_line_property("sasl.password", "--consumer-option").expect_err("secret");
    assert!(
        e.contains("process list") && e.contains("SURGSTREAM_KAFKA_CLIENT_SASL_PASSWORD"),
        "{e}"
    );
    assert!(check_command_line_property("enable.auto.commit", "--consumer-option").is_err());
    assert!(check_command_line_property("fetch.min.bytes", "--consumer-option").is_ok());
}

#[test]
fn msk_iam_refuses_what_it_cannot_honour() {
    // awsRoleArn in the Java login module: named, with what to do instead.
    let e = load(
        "sasl.mechanism=AWS_MSK_IAM\nsasl.jaas.config=software.amazon.msk.auth.iam.IAMLoginModule \
         required awsRoleArn=\"arn:aws:iam::1:role/x\";\n",
        &[],
    )
    .expect_err("awsRoleArn")
    .to_string();
    assert!(e.contains("awsRoleArn") && e.contains(":2"), "{e}");
    // librdkafka's own OIDC method beside AWS_MSK_IAM: one or the other.
    let e = load(
        "sasl.mechanism=AWS_MSK_IAM\nsasl.oauthbearer.method=oidc\n",
        &[],
    )
    .expect_err("oidc")
    .to_string();
    assert!(
        e.contains("sasl.oauthbearer.method") && e.contains("remove"),
        "{e}"
    );
}
