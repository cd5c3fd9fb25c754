//! The floor of any HTTP front, for bench/http.sh: the least a process can do to answer issue
//! 14's request over HTTP from PostgreSQL. hyper reads the request, the bearer credential goes
//! as the one parameter of the very statement the front sends (bench/pgbench/http_real_single.sql,
//! prepared once), on shared tokio-postgres connections (concurrent requests pipelined, as the
//! front does), and the data column is the body. No routing, no parsing of the query string, no
//! checks, no headers beyond the content type, no metrics, no logs: what is left is HTTP itself,
//! the relay and the wake-ups between the client, this process and PostgreSQL. Whatever the front
//! costs above this is the front's own.
//!
//! Environment: DATABASE_URL, LISTEN (127.0.0.1:18182), CONNECTIONS (1), WORKER_THREADS (half the
//! cores, as the front).
use api_gateway_front::db::RawJson;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// bench/pgbench/http_real_single.sql with the credential as $1 (the header's value, "Bearer ..."),
// as the front sends it.
const STATEMENT: &str = "WITH g AS MATERIALIZED (SELECT * FROM api_gateway.authenticate($1::text, '127.0.0.1'::inet, 'GET'::text))
SELECT g.status, g.uid, g.client_id, g.scopes, g.error, g.rate_limit, g.remaining, g.reset_s, g.detail, g.window_s,
       CASE WHEN g.status = 200 THEN api_gateway.search_read(g.uid, 'res.partner'::text, ('[[\"is_company\",\"=\",true]]')::text, '{name,email}'::text[], 10, 0, NULL::text) END,
       CASE WHEN g.status = 200 AND false THEN api_gateway.search_count(g.uid, 'res.partner'::text, ('[[\"is_company\",\"=\",true]]')::text) END
  FROM g";

struct Relay {
    connections: Vec<(tokio_postgres::Client, tokio_postgres::Statement)>,
    next: AtomicUsize,
}

impl Relay {
    async fn answer(&self, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let credential = request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        let (client, statement) =
            &self.connections[self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len()];
        let (status, body) = match client.query_one(statement, &[&credential]).await {
            Ok(row) => match row.get::<_, Option<RawJson>>(10) {
                Some(json) if row.get::<_, i32>(0) == 200 => (200, json.0),
                _ => (401, Vec::new()),
            },
            Err(error) => (500, error.to_string().into_bytes()),
        };
        Response::builder()
            .status(status)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    }
}

fn main() {
    // As the front does (src/memory.rs): the floor is the least a front can cost.
    api_gateway_front::memory::disable_transparent_huge_pages();
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let threads = env("WORKER_THREADS", "0")
        .parse::<usize>()
        .expect("WORKER_THREADS");
    let threads = if threads > 0 {
        threads
    } else {
        (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2).max(1)
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(serve(
            env(
                "DATABASE_URL",
                "postgresql:///agw_real?host=/var/run/postgresql",
            ),
            env("LISTEN", "127.0.0.1:18182"),
            env("CONNECTIONS", "1").parse().expect("CONNECTIONS"),
        ));
}

async fn serve(database_url: String, listen: String, count: usize) {
    let mut connections = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let (client, connection) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
            .await
            .expect("a database connection");
        tokio::spawn(connection);
        let statement = client
            .prepare(STATEMENT)
            .await
            .expect("the statement prepares");
        connections.push((client, statement));
    }
    let relay = Arc::new(Relay {
        connections,
        next: AtomicUsize::new(0),
    });
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .expect("the listen address");
    println!("listening on {listen}");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let relay = relay.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let relay = relay.clone();
                async move { Ok::<_, std::convert::Infallible>(relay.answer(request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
