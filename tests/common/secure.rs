//! [`SecureBroker`]: an Apache Kafka node of the test's own that encrypts and authenticates as
//! a production cluster does — a `SASL_SSL` listener (SCRAM-SHA-512), an `SSL` listener that
//! requires a client certificate (mTLS), certificates made here by openssl under a throwaway
//! CA, and an authorizer that denies what no ACL allows. A plaintext listener whose principal
//! is a super user stands for the operator's admin access (topics, ACLs).

use super::*;

/// SCRAM users: the operator's, the simulator's and the ingestor's.
pub const SCRAM_USERS: [(&str, &str); 3] = [
    ("admin", "admin-secret-8c1f"),
    ("sim", "sim-secret-41d9"),
    ("ingest", "ingest-secret-77ae"),
];

pub struct SecureBroker {
    pub dir: PathBuf,
    /// SASL_SSL with OAUTHBEARER checked by tests/kafka/MskTokenLogger.java (MSK IAM tokens),
    /// when started with [`SecureBroker::start_with_msk_iam`]; 0 otherwise.
    pub oauth_port: u16,
    /// PLAINTEXT, principal ANONYMOUS (a super user): the operator's access.
    pub admin_port: u16,
    /// SASL_SSL with SCRAM-SHA-512.
    pub sasl_port: u16,
    /// SSL with a required client certificate; the principal is the certificate's CN.
    pub mtls_port: u16,
    child: Option<Child>,
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`<ca>.pem`, `<ca>.key`) in `dir`.
fn make_ca(dir: &std::path::Path, ca: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
            "-subj",
            &format!("/CN=surgstream test {ca}"),
        ],
    );
}

/// A certificate for `cn` signed by `ca` (`<name>.pem`, `<name>.key`, the key PKCS#8), with
/// `san` as its subjectAltName when given.
fn make_cert(dir: &std::path::Path, ca: &str, name: &str, cn: &str, san: Option<&str>) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        match san {
            Some(san) => format!("subjectAltName={san}\n"),
            None => "basicConstraints=CA:FALSE\n".to_owned(),
        },
    )
    .expect("write the extensions file");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &ext,
        ],
    );
}

/// The broker side of MSK IAM: tests/kafka/MskTokenLogger.java compiled against the broker's
/// jars into `dir/classes`.
fn compile_token_logger(dir: &std::path::Path) -> PathBuf {
    let classes = dir.join("classes");
    std::fs::create_dir_all(&classes).expect("create the classes directory");
    let out = std::process::Command::new("javac")
        .arg("-cp")
        .arg(format!("{}/*", kafka_libs().display()))
        .arg("-d")
        .arg(&classes)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/kafka/MskTokenLogger.java"
        ))
        .output()
        .expect("run javac (scripts/setup.sh installs a JDK)");
    assert!(
        out.status.success(),
        "javac MskTokenLogger.java: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    classes
}

impl SecureBroker {
    pub async fn start(name: &str) -> Self {
        Self::start_with(name, false).await
    }

    /// [`SecureBroker::start`] plus a SASL_SSL listener taking MSK IAM tokens (OAUTHBEARER),
    /// which logs each token offered to `dir/tokens.log` and asks every connection to
    /// authenticate again every 10 s (KIP-368), so that a client's new token is seen at once.
    pub async fn start_with_msk_iam(name: &str) -> Self {
        Self::start_with(name, true).await
    }

    /// The token log of the MSK IAM listener.
    pub fn token_log(&self) -> PathBuf {
        self.dir.join("tokens.log")
    }

    pub fn oauth_addr(&self) -> String {
        format!("127.0.0.1:{}", self.oauth_port)
    }

    async fn start_with(name: &str, msk_iam: bool) -> Self {
        let dir = std::env::temp_dir().join(format!("surgstream-secure-{}", unique(name)));
        std::fs::create_dir_all(&dir).expect("create the broker's directory");
        make_ca(&dir, "ca");
        make_ca(&dir, "other-ca");
        // The broker's certificate names the address clients dial (hostname verification is on
        // in librdkafka by default).
        make_cert(&dir, "ca", "broker", "broker", Some("IP:127.0.0.1"));
        make_cert(&dir, "ca", "ingest", "ingest", None);
        make_cert(&dir, "other-ca", "stranger", "ingest", None);
        // Kafka's PEM keystore: the private key, then the certificate chain, in one file.
        let keystore = [
            std::fs::read_to_string(dir.join("broker.key")).expect("broker key"),
            std::fs::read_to_string(dir.join("broker.pem")).expect("broker certificate"),
        ]
        .concat();
        std::fs::write(dir.join("broker-keystore.pem"), keystore).expect("write the keystore");

        let (admin_port, sasl_port, mtls_port, controller_port) =
            (free_port(), free_port(), free_port(), free_port());
        let oauth_port = if msk_iam { free_port() } else { 0 };
        let d = dir.display();
        let mut extra = format!(
            "listeners=INTERNAL://127.0.0.1:{admin_port},SASL_SSL://127.0.0.1:{sasl_port},\
SSL://127.0.0.1:{mtls_port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=INTERNAL://127.0.0.1:{admin_port},SASL_SSL://127.0.0.1:{sasl_port},\
SSL://127.0.0.1:{mtls_port}
listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
inter.broker.listener.name=INTERNAL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=\
org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location={d}/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location={d}/ca.pem
listener.name.ssl.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]+)$/$1/,DEFAULT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS;User:admin
allow.everyone.if.no.acl.found=false
"
        );
        let classes = msk_iam.then(|| compile_token_logger(&dir));
        if msk_iam {
            let listeners = |kind: &str| {
                format!(
                    "{kind}=INTERNAL://127.0.0.1:{admin_port},SASL_SSL://127.0.0.1:{sasl_port},\
SSL://127.0.0.1:{mtls_port},OAUTH://127.0.0.1:{oauth_port}{}",
                    if kind == "listeners" {
                        format!(",CONTROLLER://127.0.0.1:{controller_port}")
                    } else {
                        String::new()
                    }
                )
            };
            extra.push_str(&format!(
                "{}
{}
listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,OAUTH:SASL_SSL
listener.name.oauth.sasl.enabled.mechanisms=OAUTHBEARER
listener.name.oauth.oauthbearer.sasl.jaas.config=\
org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
unsecuredLoginStringClaim_sub=\"broker\" tokenLog=\"{d}/tokens.log\";
listener.name.oauth.oauthbearer.sasl.server.callback.handler.class=surgstream.test.MskTokenLogger
listener.name.oauth.oauthbearer.connections.max.reauth.ms=10000
super.users=User:ANONYMOUS;User:admin;User:msk-iam
",
                listeners("listeners"),
                listeners("advertised.listeners")
            ));
        }
        std::fs::write(dir.join("extra.properties"), extra).expect("write extra.properties");

        let log = std::fs::File::create(dir.join("kafka.log")).expect("create the broker's log");
        let mut cmd = Command::new("bash");
        cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka.sh"))
            .args(["node", "--dir"])
            .arg(dir.join("node"))
            .args(["--node-id", "1", "--port", &admin_port.to_string()])
            .args(["--controller-port", &controller_port.to_string()])
            .args(["--voters", &format!("1@127.0.0.1:{controller_port}")])
            .args(["--heap", "512m", "--extra"])
            .arg(dir.join("extra.properties"));
        if let Some(classes) = &classes {
            cmd.arg("--classpath").arg(classes);
        }
        for (user, password) in SCRAM_USERS {
            cmd.args([
                "--scram",
                &format!("SCRAM-SHA-512=[name={user},password={password}]"),
            ]);
        }
        let child = cmd
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn scripts/kafka.sh node");
        let broker = Self {
            dir,
            oauth_port,
            admin_port,
            sasl_port,
            mtls_port,
            child: Some(child),
        };
        for port in [admin_port, sasl_port, mtls_port, oauth_port] {
            if port == 0 {
                continue;
            }
            wait_for_port_within(port, "the secured Kafka node", Duration::from_secs(90)).await;
        }
        broker
    }

    pub fn admin_addr(&self) -> String {
        format!("127.0.0.1:{}", self.admin_port)
    }

    pub fn sasl_addr(&self) -> String {
        format!("127.0.0.1:{}", self.sasl_port)
    }

    pub fn mtls_addr(&self) -> String {
        format!("127.0.0.1:{}", self.mtls_port)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes a client properties file `name` with `lines`; returns its path.
    pub fn client_config(&self, name: &str, lines: &[String]) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, lines.join("\n") + "\n").expect("write a client properties file");
        path
    }

    /// The lines of a SCRAM-SHA-512 client over TLS, trusting `ca`; the password as given
    /// (a literal, or a `${env:…}` reference).
    pub fn scram_lines(&self, user: &str, password: &str, ca: &str) -> Vec<String> {
        vec![
            "security.protocol=SASL_SSL".into(),
            "sasl.mechanism=SCRAM-SHA-512".into(),
            format!("sasl.username={user}"),
            format!("sasl.password={password}"),
            format!(
                "ssl.ca.location={}",
                self.file(&format!("{ca}.pem")).display()
            ),
        ]
    }

    /// The lines of an mTLS client presenting certificate `cert`.
    pub fn mtls_lines(&self, cert: &str) -> Vec<String> {
        vec![
            "security.protocol=SSL".into(),
            format!("ssl.ca.location={}", self.file("ca.pem").display()),
            format!(
                "ssl.certificate.location={}",
                self.file(&format!("{cert}.pem")).display()
            ),
            format!(
                "ssl.key.location={}",
                self.file(&format!("{cert}.key")).display()
            ),
        ]
    }

    /// `kafka-acls --add` through the admin listener: `args` are AclCommand's (principal,
    /// operations, resources).
    pub fn acl(&self, args: &[&str]) {
        let out = std::process::Command::new("java")
            .arg("-cp")
            .arg(format!("{}/*", kafka_libs().display()))
            .arg("org.apache.kafka.tools.AclCommand")
            .args(["--bootstrap-server", &self.admin_addr(), "--add"])
            .args(args)
            .output()
            .expect("run Kafka's AclCommand");
        assert!(
            out.status.success(),
            "AclCommand {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The ACLs the README lists for the ingestor, on `env`'s topics and group, for `principal`:
    /// Read and Describe on the source topics, Read on the group, Write and Describe on the
    /// dead-letter topics. Nothing else.
    pub fn grant_ingestor(&self, env: &TestEnv, principal: &str) {
        let p = format!("User:{principal}");
        let (t, e) = (
            env.topic("surgical.telemetry.v1"),
            env.topic("surgical.events.v1"),
        );
        let (td, ed) = (
            env.topic("surgical.telemetry.dlq.v1"),
            env.topic("surgical.events.dlq.v1"),
        );
        self.acl(&[
            "--allow-principal",
            &p,
            "--operation",
            "Read",
            "--operation",
            "Describe",
            "--topic",
            &t,
            "--topic",
            &e,
        ]);
        self.acl(&[
            "--allow-principal",
            &p,
            "--operation",
            "Read",
            "--group",
            &env.group,
        ]);
        self.acl(&[
            "--allow-principal",
            &p,
            "--operation",
            "Write",
            "--operation",
            "Describe",
            "--topic",
            &td,
            "--topic",
            &ed,
        ]);
    }

    /// Write and Describe on `env`'s source topics for the simulator's user.
    pub fn grant_simulator(&self, env: &TestEnv) {
        self.acl(&[
            "--allow-principal",
            "User:sim",
            "--operation",
            "Write",
            "--operation",
            "Describe",
            "--topic",
            &env.topic("surgical.telemetry.v1"),
            "--topic",
            &env.topic("surgical.events.v1"),
        ]);
    }
}

impl Drop for SecureBroker {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Where scripts/kafka.sh keeps Kafka's jars.
pub fn kafka_libs() -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka.sh");
    let version = std::process::Command::new("bash")
        .args([script, "version"])
        .output()
        .expect("scripts/kafka.sh version");
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let cache = std::env::var_os("SURGSTREAM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/surgstream")
        });
    cache.join(format!("kafka-{version}")).join("libs")
}
