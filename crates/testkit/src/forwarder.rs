//! A TCP forwarder standing in for a database cluster's read-write endpoint (CloudNativePG's `-rw` Service,
//! HAProxy in front of Patroni): clients connect to one address, and the test decides which server is behind it.
//! Switching it cuts every connection through it, as the endpoint of a failed-over cluster does, and sends new
//! ones to the new primary.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

struct Route {
    target: SocketAddr,
    /// The connections forwarded to `target`, cut when it changes.
    connections: Vec<AbortHandle>,
}

/// Forwards every connection to `addr` to the current target; stops when dropped.
pub struct Forwarder {
    pub addr: SocketAddr,
    route: Arc<Mutex<Route>>,
    accept: JoinHandle<()>,
}

impl Forwarder {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind forwarder");
        let addr = listener.local_addr().unwrap();
        let route = Arc::new(Mutex::new(Route {
            target,
            connections: Vec::new(),
        }));
        let accept = tokio::spawn({
            let route = Arc::clone(&route);
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let mut route = route.lock().unwrap();
                    let target = route.target;
                    let task = tokio::spawn(forward(client, target));
                    route.connections.retain(|c| !c.is_finished());
                    route.connections.push(task.abort_handle());
                }
            }
        });
        Self {
            addr,
            route,
            accept,
        }
    }

    /// Sends new connections to `target` and cuts every open one.
    pub fn switch_to(&self, target: SocketAddr) {
        let mut route = self.route.lock().unwrap();
        route.target = target;
        for connection in route.connections.drain(..) {
            connection.abort();
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.accept.abort();
        for connection in self.route.lock().unwrap().connections.drain(..) {
            connection.abort();
        }
    }
}

/// Copies bytes both ways until either side closes; a target that refuses the connection closes the client's.
async fn forward(mut client: TcpStream, target: SocketAddr) {
    if let Ok(mut server) = TcpStream::connect(target).await {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    }
}
