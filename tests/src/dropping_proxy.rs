//! A fault injector for tests of what a client does when a server drops connections: a
//! TCP proxy in front of a real server that closes the first connections it accepts,
//! as soon as the request starts to arrive and without an answer, and forwards the rest
//! both ways. It counts the connections it accepted.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

pub struct DroppingProxy {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl DroppingProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `target_port` on 127.0.0.1,
    /// after dropping the first `drop_first` connections.
    pub fn start(target_port: u16, drop_first: usize) -> DroppingProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind the proxy");
        let port = listener.local_addr().expect("the proxy's address").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stopping = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let accepted = Arc::clone(&accepted);
            let stopping = Arc::clone(&stopping);
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(mut client) = client else { continue };
                    let seen = accepted.fetch_add(1, Ordering::SeqCst);
                    if seen < drop_first {
                        let _ = client.read(&mut [0; 64]);
                        let _ = client.shutdown(Shutdown::Both);
                        continue;
                    }
                    if let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) {
                        forward(client, server);
                    }
                }
            })
        };
        DroppingProxy {
            port,
            accepted,
            stopping,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:<port>`, the endpoint a client is given.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many connections the proxy accepted, dropped ones included.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for DroppingProxy {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which then sees it is stopping.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Copies bytes both ways until either side closes.
fn forward(client: TcpStream, server: TcpStream) {
    let (Ok(client_reader), Ok(server_reader)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    std::thread::spawn(move || copy_then_close(client_reader, server));
    std::thread::spawn(move || copy_then_close(server_reader, client));
}

fn copy_then_close(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.flush();
    let _ = to.shutdown(Shutdown::Both);
}
