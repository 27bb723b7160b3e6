//! How fast IDs are issued, against the layout's ceiling of 4,096 IDs per millisecond (4.096 M IDs/s): one
//! thread, two threads on one generator, and the HTTP service taking 1,000 at a time over loopback (that one
//! needs ZooKeeper: `ZOOKEEPER_CONNECT`, as `make bench` sets it). Criterion reports elements/s = IDs/s. And
//! how fast numbers for short codes come from blocks of the code counter (`CodeBlocks::take`, ZooKeeper too),
//! against the shortener's 20k creates/s.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use idgen::{
    blocks::CodeBlocks,
    clock::SystemClock,
    metrics::{BlockMetrics, IdgenMetrics},
    service::{build, ServiceArgs},
    Generator, Grant, Layout,
};
use plumbing::{shutdown::Shutdown, tasks::Supervisor};

/// A generator issuing without a lease behind it: the benchmark measures issuing, not ZooKeeper.
fn unleased_generator() -> Arc<Generator> {
    let generator = Generator::new(
        Layout::default(),
        SystemClock,
        Duration::from_millis(5),
        IdgenMetrics::unregistered(),
    );
    generator.grant(Grant {
        worker: 1,
        valid_until: Instant::now() + Duration::from_secs(86_400),
        ceiling_unix_ms: u64::MAX,
    });
    Arc::new(generator)
}

fn generator(c: &mut Criterion) {
    let generator = unleased_generator();
    let mut group = c.benchmark_group("generator");
    group.throughput(Throughput::Elements(1));
    group.bench_function("next_id, 1 thread", |b| {
        b.iter(|| generator.next_id().expect("an ID"))
    });
    group.bench_function("next_id, 2 threads on one generator", |b| {
        b.iter_custom(|iterations| {
            let started = Instant::now();
            std::thread::scope(|scope| {
                for share in [iterations / 2, iterations - iterations / 2] {
                    let generator = &generator;
                    scope.spawn(move || {
                        for _ in 0..share {
                            std::hint::black_box(generator.next_id().expect("an ID"));
                        }
                    });
                }
            });
            started.elapsed()
        })
    });
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("next_ids(1000), 1 thread", |b| {
        b.iter(|| generator.next_ids(1_000).expect("IDs"))
    });
    group.finish();

    // The same work with 16 sequence bits (65,536 IDs per ms), where the ceiling is out of reach: the cost of
    // one ID itself, so the headroom under the default layout's ceiling shows.
    let wide = Generator::new(
        Layout::new(idgen::layout::DEFAULT_EPOCH_MS, 39, 8, 16).expect("layout"),
        SystemClock,
        Duration::from_millis(5),
        IdgenMetrics::unregistered(),
    );
    wide.grant(Grant {
        worker: 1,
        valid_until: Instant::now() + Duration::from_secs(86_400),
        ceiling_unix_ms: u64::MAX,
    });
    let mut group = c.benchmark_group("cost");
    group.throughput(Throughput::Elements(1));
    group.bench_function("next_id, 1 thread, 16 sequence bits", |b| {
        b.iter(|| wide.next_id().expect("an ID"))
    });
    group.finish();
}

/// Concurrent client connections: enough to keep the server's workers busy on a small machine.
const HTTP_CLIENTS: u64 = 4;

fn http_service(c: &mut Criterion) {
    if std::env::var_os("ZOOKEEPER_CONNECT").is_none() {
        eprintln!("skipping the HTTP benchmark: ZOOKEEPER_CONNECT is not set (make bench sets it)");
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let shutdown = Shutdown::new();
    let url = runtime.block_on(async {
        let args = ServiceArgs {
            listen: "127.0.0.1:0".into(),
            admin_listen: "127.0.0.1:0".into(),
            http_workers: 2,
            drain: plumbing::drain::DrainArgs::immediate(),
            idgen: idgen::config::IdgenArgs::new(testkit::zookeeper_chroot().await),
        };
        let app = build(args).await.expect("the idgen service starts");
        let url = format!("http://127.0.0.1:{}/v1/ids?count=1000", app.port());
        tokio::spawn(app.run_until_stopped(shutdown.clone()));
        url
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");

    let mut group = c.benchmark_group("http");
    group.throughput(Throughput::Elements(1_000));
    group.sample_size(20);
    group.bench_function("GET /v1/ids?count=1000, 4 clients", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let started = Instant::now();
                let clients: Vec<_> = (0..HTTP_CLIENTS)
                    .map(|client_index| {
                        let (client, url) = (client.clone(), url.clone());
                        let share = iterations / HTTP_CLIENTS
                            + u64::from(client_index < iterations % HTTP_CLIENTS);
                        tokio::spawn(async move {
                            for _ in 0..share {
                                let response = client.get(&url).send().await.expect("an answer");
                                assert!(response.status().is_success(), "{}", response.status());
                                std::hint::black_box(response.bytes().await.expect("a body"));
                            }
                        })
                    })
                    .collect();
                for client in clients {
                    client.await.expect("client task");
                }
                started.elapsed()
            })
        })
    });
    group.finish();
    shutdown.trigger();
}

fn code_blocks(c: &mut Criterion) {
    if std::env::var_os("ZOOKEEPER_CONNECT").is_none() {
        eprintln!(
            "skipping the code blocks benchmark: ZOOKEEPER_CONNECT is not set (make bench sets it)"
        );
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let shutdown = Shutdown::new();
    let blocks = runtime.block_on(async {
        let args = idgen::config::IdgenArgs::new(testkit::zookeeper_chroot().await);
        let supervisor = Supervisor::unregistered(shutdown.clone());
        let options = args.blocks().expect("settings");
        CodeBlocks::start(options, BlockMetrics::unregistered(), &supervisor)
            .await
            .expect("the first block is leased")
    });

    let mut group = c.benchmark_group("code_blocks");
    group.throughput(Throughput::Elements(1));
    group.bench_function("take(1), 1 thread", |b| {
        b.iter(|| runtime.block_on(blocks.take(1)).expect("a number"))
    });
    group.bench_function("take(1), 2 threads", |b| {
        b.iter_custom(|iterations| {
            let started = Instant::now();
            std::thread::scope(|scope| {
                for share in [iterations / 2, iterations - iterations / 2] {
                    let (blocks, runtime) = (&blocks, &runtime);
                    scope.spawn(move || {
                        for _ in 0..share {
                            std::hint::black_box(
                                runtime.block_on(blocks.take(1)).expect("a number"),
                            );
                        }
                    });
                }
            });
            started.elapsed()
        })
    });
    group.finish();
    shutdown.trigger();
}

criterion_group!(benches, generator, http_service, code_blocks);
criterion_main!(benches);
