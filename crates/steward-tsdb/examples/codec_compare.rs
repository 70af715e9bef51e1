//! Compares candidate chunk codecs on simulated series and measures the chosen one:
//! `cargo run --release -p steward-tsdb --example codec_compare`.
use std::time::Instant;

use steward_tsdb::codec::{decode_raw, encode_raw};
use steward_tsdb::sim::{self, KINDS};

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// pco on both columns, letting pco pick its own delta encoding for time.
fn pco_plain(ts: &[i64], vs: &[f64], level: usize) -> usize {
    let cfg = pco::ChunkConfig::default().with_compression_level(level);
    pco::standalone::simple_compress(ts, &cfg)
        .expect("pco")
        .len()
        + pco::standalone::simple_compress(vs, &cfg)
            .expect("pco")
            .len()
}

/// Delta-of-delta varints for time, XOR with the previous value's bits, then zstd -3
/// (optionally with the XORs byte-transposed first).
fn dod_xor_zstd(ts: &[i64], vs: &[f64], shuffle: bool) -> usize {
    let mut raw = Vec::new();
    let (mut pt, mut pd) = (0i64, 0i64);
    for &t in ts {
        let d = t - pt;
        varint(zigzag(d - pd), &mut raw);
        pd = d;
        pt = t;
    }
    let mut prev = 0u64;
    let xs: Vec<u64> = vs
        .iter()
        .map(|v| {
            let b = v.to_bits();
            let x = b ^ prev;
            prev = b;
            x
        })
        .collect();
    if shuffle {
        for byte in 0..8 {
            for x in &xs {
                raw.push((x >> (56 - 8 * byte)) as u8);
            }
        }
    } else {
        for x in &xs {
            raw.extend_from_slice(&x.to_be_bytes());
        }
    }
    zstd::bulk::compress(&raw, 3).expect("zstd").len()
}

fn main() {
    println!(
        "| series | interval | samples/chunk | chosen | pco, own ts deltas | dod + XOR + zstd | dod + XOR shuffled + zstd |"
    );
    println!("|---|---|---|---|---|---|---|");
    let reps = 20u64;
    for interval in [1_000i64, 10_000] {
        for kind in KINDS {
            for n in [120usize, 360, 720, 1440] {
                let mut sizes = [0usize; 4];
                for seed in 0..reps {
                    let s = sim::series(seed, kind, 1_700_000_000_000, interval, n);
                    let (ts, vs): (Vec<i64>, Vec<f64>) = s.into_iter().unzip();
                    sizes[0] += encode_raw(&ts, &vs).len();
                    sizes[1] += pco_plain(&ts, &vs, 8);
                    sizes[2] += dod_xor_zstd(&ts, &vs, false);
                    sizes[3] += dod_xor_zstd(&ts, &vs, true);
                }
                let f = |x: usize| format!("{:.2}", x as f64 / (reps as usize * n) as f64);
                println!(
                    "| {kind:?} | {} s | {n} | {} | {} | {} | {} |",
                    interval / 1000,
                    f(sizes[0]),
                    f(sizes[1]),
                    f(sizes[2]),
                    f(sizes[3])
                );
            }
        }
    }
    // A whole simulated server (its ~100 series, 720 samples each at 10 s).
    let cols: Vec<(Vec<i64>, Vec<f64>)> = sim::server_series()
        .iter()
        .enumerate()
        .map(|(i, (name, label))| {
            sim::server_metric(i as u64, name, label, 1_700_000_000_000, 10_000, 720)
                .into_iter()
                .unzip()
        })
        .collect();
    let total: usize = cols.iter().map(|c| c.0.len()).sum();
    let rounds = 10;
    let t = Instant::now();
    let mut encoded = Vec::new();
    for _ in 0..rounds {
        encoded = cols.iter().map(|(ts, vs)| encode_raw(ts, vs)).collect();
    }
    let enc = t.elapsed().as_secs_f64() / rounds as f64;
    let t = Instant::now();
    for _ in 0..rounds {
        for e in &encoded {
            std::hint::black_box(decode_raw(e).expect("decodes"));
        }
    }
    let dec = t.elapsed().as_secs_f64() / rounds as f64;
    let bytes: usize = encoded.iter().map(|e| e.len()).sum();
    println!(
        "simulated server, chosen codec: {:.2} B/sample, encode {:.1} M samples/s, decode {:.1} M samples/s (one core)",
        bytes as f64 / total as f64,
        total as f64 / enc / 1e6,
        total as f64 / dec / 1e6
    );
    let t = Instant::now();
    let mut bytes = 0;
    for _ in 0..rounds {
        bytes = cols
            .iter()
            .map(|(ts, vs)| dod_xor_zstd(ts, vs, true))
            .sum::<usize>();
    }
    let enc = t.elapsed().as_secs_f64() / rounds as f64;
    println!(
        "simulated server, dod + XOR shuffled + zstd: {:.2} B/sample, encode {:.1} M samples/s",
        bytes as f64 / total as f64,
        total as f64 / enc / 1e6
    );
}
