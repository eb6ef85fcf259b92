//! What a connection needs before the App sees it: small writes sent at once.

use std::any::Any;

use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;

/// Turns Nagle's algorithm off on a plain TCP connection (`TCP_NODELAY`); give it
/// to `HttpServer::on_connect`.
///
/// actix-web leaves it on, and a socket's messages are small writes: a replay of
/// many events, written in several bursts, waited for the client's delayed ACK
/// (about 40 ms on Linux) between bursts. The other adapters' servers set it. A
/// TLS connection is another type: set it on the TCP stream inside yours.
///
/// ```no_run
/// use actix_web::{App, HttpServer};
/// use batch_core::{BatchEndpoint, Config};
///
/// # #[actix_web::main] async fn main() -> std::io::Result<()> {
/// let batch = BatchEndpoint::new(Config::default());
/// HttpServer::new(move || batch_actix::with_batch(App::new(), batch.clone()))
///     .on_connect(batch_actix::no_delay)
///     .bind("127.0.0.1:8080")?
///     .run()
///     .await
/// # }
/// ```
pub fn no_delay(connection: &dyn Any, _data: &mut Extensions) {
    if let Some(tcp) = connection.downcast_ref::<TcpStream>() {
        // A connection the peer already reset fails here, and fails its first
        // read or write anyway.
        let _ = tcp.set_nodelay(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn a_plain_tcp_connection_gets_no_delay() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        accepted.set_nonblocking(true).unwrap();
        let tcp = TcpStream::from_std(accepted).unwrap();
        assert!(!tcp.nodelay().unwrap(), "Nagle is on by default");
        no_delay(&tcp, &mut Extensions::new());
        assert!(tcp.nodelay().unwrap());
        // Anything else is left alone.
        no_delay(&client, &mut Extensions::new());
    }
}
