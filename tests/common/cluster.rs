//! [`Cluster`]: an Apache Kafka cluster of the test's own (KRaft nodes started with
//! `scripts/kafka.sh node`), whose nodes can be killed and started again.

use super::*;

/// One node of a [`Cluster`]: a combined KRaft broker+controller, as `scripts/kafka.sh node`
/// starts it (the JVM itself: the script `exec`s it, so a kill reaches the broker).
struct Node {
    id: u32,
    port: u16,
    controller_port: u16,
    child: Option<Child>,
}

/// An Apache Kafka cluster of the test's own (KRaft, `n` combined broker+controller nodes, the
/// jars `scripts/services.sh` fetched) on free ports of 127.0.0.1 over fresh directories. Nodes
/// can be killed (`kill -9`) and started again on the same ports and data.
pub struct Cluster {
    dir: PathBuf,
    nodes: Vec<Node>,
}

/// A single-node [`Cluster`] (the demo's shape), for tests that stop and start their broker.
pub type Broker = Cluster;

impl Cluster {
    /// A cluster of `n` nodes, started, with every broker registered (so that topics of
    /// replication factor `n` can be created at once).
    pub async fn start(name: &str, n: u32) -> Self {
        let dir = std::env::temp_dir().join(format!("surgstream-kafka-{}", unique(name)));
        std::fs::create_dir_all(&dir).expect("create the cluster's directory");
        let nodes = (1..=n)
            .map(|id| Node {
                id,
                port: free_port(),
                controller_port: free_port(),
                child: None,
            })
            .collect();
        let mut cluster = Self { dir, nodes };
        for id in 1..=n {
            cluster.spawn(id);
        }
        for node in &cluster.nodes {
            wait_for_port_within(node.port, "a Kafka node", Duration::from_secs(90)).await;
        }
        cluster.wait_for_brokers(n as usize).await;
        cluster
    }

    /// A one-node cluster.
    pub async fn single(name: &str) -> Self {
        Self::start(name, 1).await
    }

    /// Every node's address: the bootstrap list.
    pub fn addr(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `id`'s log directory (`<topic>-<partition>/*.log` inside).
    pub fn log_dir(&self, id: u32) -> PathBuf {
        self.dir.join(format!("node-{id}")).join("data")
    }

    fn voters(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("{}@127.0.0.1:{}", n.id, n.controller_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, id: u32) {
        let voters = self.voters();
        let heap = if self.nodes.len() > 1 { "512m" } else { "768m" };
        let dir = self.dir.join(format!("node-{id}"));
        std::fs::create_dir_all(&dir).expect("create the node's directory");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("kafka.log"))
            .expect("open the node's log");
        let node = &mut self.nodes[id as usize - 1];
        assert!(node.child.is_none(), "Kafka node {id} is already running");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka.sh");
        let child = Command::new("bash")
            .arg(script)
            .args(["node", "--dir"])
            .arg(&dir)
            .args([
                "--node-id",
                &id.to_string(),
                "--port",
                &node.port.to_string(),
                "--controller-port",
                &node.controller_port.to_string(),
                "--voters",
                &voters,
                "--heap",
                heap,
            ])
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn scripts/kafka.sh node");
        node.child = Some(child);
    }

    /// Waits until the cluster's metadata lists `n` brokers.
    pub async fn wait_for_brokers(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let listed = self.metadata().map(|m| m.brokers().len()).unwrap_or(0);
            if listed >= n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the Kafka cluster in {} lists {listed} of {n} brokers after 90 s",
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn metadata(&self) -> Option<rdkafka::metadata::Metadata> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", self.addr())
            .set("log_level", "0")
            .create()
            .ok()?;
        c.fetch_metadata(None, Duration::from_secs(5)).ok()
    }

    /// The node that leads `partition` of `topic` now (None while it has no leader).
    pub fn leader(&self, topic: &str, partition: i32) -> Option<u32> {
        let md = self.metadata()?;
        let t = md.topics().iter().find(|t| t.name() == topic)?;
        let p = t.partitions().iter().find(|p| p.id() == partition)?;
        u32::try_from(p.leader()).ok()
    }

    /// `kill -9` of node `id` (its data stays); returns once it is reaped, and asserts that
    /// the signal is what ended it.
    pub async fn kill(&mut self, id: u32) {
        use std::os::unix::process::ExitStatusExt;
        let mut child = self.nodes[id as usize - 1]
            .child
            .take()
            .unwrap_or_else(|| panic!("Kafka node {id} is not running"));
        child.start_kill().expect("kill -9 a Kafka node");
        let status = child.wait().await.expect("reap a Kafka node");
        assert_eq!(
            status.signal(),
            Some(9),
            "Kafka node {id} died of the SIGKILL"
        );
    }

    /// Starts node `id` again on its port and data, and waits until it listens.
    pub async fn start_node(&mut self, id: u32) {
        self.spawn(id);
        let port = self.nodes[id as usize - 1].port;
        wait_for_port_within(port, "a restarted Kafka node", Duration::from_secs(90)).await;
    }

    /// Kills every node (`kill -9`; the data stays).
    pub async fn stop(&mut self) {
        for id in 1..=self.nodes.len() as u32 {
            if self.nodes[id as usize - 1].child.is_some() {
                self.kill(id).await;
            }
        }
    }

    /// Starts every stopped node again, and waits until all are registered.
    pub async fn restart(&mut self) {
        let stopped: Vec<u32> = self
            .nodes
            .iter()
            .filter(|n| n.child.is_none())
            .map(|n| n.id)
            .collect();
        for id in &stopped {
            self.spawn(*id);
        }
        for id in stopped {
            let port = self.nodes[id as usize - 1].port;
            wait_for_port_within(port, "a restarted Kafka node", Duration::from_secs(90)).await;
        }
        self.wait_for_brokers(self.nodes.len()).await;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(child) = node.child.as_mut() {
                let _ = child.start_kill();
            }
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("Kafka cluster logs kept in {}", self.dir.display());
        }
    }
}
