//! Head ingest throughput at the benchmark's shape (1,000 agents × 100 series, 1 s), one
//! core, no database: `cargo run --release -p steward-tsdb --example head_ingest`.
use std::time::Instant;

use steward_tsdb::codec::{encode_log, encode_raw};
use steward_tsdb::{Head, HeadConfig};

fn main() {
    let series = 100_000i64;
    let seconds = 60;
    let mut head = Head::new(HeadConfig::default(), 1);
    let (mut append, mut encode) = (0.0, 0.0);
    let mut n = 0u64;
    for s in 0..seconds {
        let t = Instant::now();
        for id in 0..series {
            let ts = 1_700_000_000_000 + s * 1000 + (id % 7);
            head.append(id, ts, ((id + s) % 1000) as f64 / 100.0);
            n += 1;
        }
        append += t.elapsed().as_secs_f64();
        if s % 5 == 4 {
            let t = Instant::now();
            let f = head.take_flush(1_700_000_000_000 + s * 1000);
            let log = encode_log(&f.log);
            let chunks: usize = f
                .sealed
                .iter()
                .map(|c| encode_raw(&c.ts, &c.values).len())
                .sum();
            std::hint::black_box((log, chunks));
            head.commit_flush(&f);
            encode += t.elapsed().as_secs_f64();
        }
    }
    println!(
        "{n} samples: append {:.1} M samples/s; with flush (log encoding) {:.1} M samples/s; {} samples in memory",
        n as f64 / append / 1e6,
        n as f64 / (append + encode) / 1e6,
        head.samples_in_memory()
    );
}
