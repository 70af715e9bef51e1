//! Runner shells against the parser of their markers: split reads, stray bytes, exit codes.
use super::*;

#[test]
fn the_body_is_one_single_quoted_word() {
    let line = command_line("ab", "echo 'x' \"y\"\nexit 3");
    assert_eq!(
        line,
        "printf '\\036ab:go\\n'; ( trap '[ -z \"$!\" ] || printf \"\\036ab:bg\\n\"' EXIT; eval 'echo '\\''x'\\'' \"y\"\nexit 3' ) </dev/null; printf '\\036ab:%d\\n' $?; printf '\\036ab:end\\n' >&2\n"
    );
}

/// Feeds a parser `(stdout?, bytes)` pieces cut into chunks of `size`; returns stdout,
/// stderr, the end reported and the parser.
fn feed(
    fresh: bool,
    pieces: &[(bool, &[u8])],
    size: usize,
) -> (Vec<u8>, Vec<u8>, Option<Output>, Parser) {
    let mut p = Parser::new("N", fresh, (!fresh).then_some(7), fresh.then(Vec::new));
    let (mut out, mut err, mut end) = (Vec::new(), Vec::new(), None);
    let mut drain = |p: &mut Parser, out: &mut Vec<u8>, err: &mut Vec<u8>| {
        while let Some(o) = p.pop() {
            match o {
                Output::Stdout(d) => out.extend(d),
                Output::Stderr(d) => err.extend(d),
                other => end = Some(other),
            }
        }
    };
    for (stdout, bytes) in pieces {
        for chunk in bytes.chunks(size) {
            if *stdout {
                p.on_stdout(chunk);
            } else {
                p.on_stderr(chunk);
            }
            drain(&mut p, &mut out, &mut err);
        }
    }
    (out, err, end, p)
}

#[test]
fn markers_are_cut_out_wherever_the_chunks_split() {
    let out: &[u8] = b"a\x1eN\x1e\x1eN;b\n\x1eN:x no newline";
    let pieces: &[(bool, &[u8])] = &[
        (false, b"steward-pid:4242\nwarn\x1e"),
        (true, b"\x1eN:go\n"),
        (true, out),
        (false, b"\x1eN:en"),
        (true, b"\x1eN:3\n"),
        (false, b"d\n"),
    ];
    for size in 1..=40 {
        let (o, e, end, p) = feed(true, pieces, size);
        assert_eq!(o, out, "chunks of {size}");
        assert_eq!(e, b"warn\x1e", "chunks of {size}");
        assert_eq!(end, Some(Output::Exit(3)));
        assert_eq!(p.pid, Some(4242));
        assert!(!p.dirty);
    }
}

#[test]
fn stray_bytes_and_background_jobs_make_a_runner_unusable() {
    // Before the acknowledgement of a reused runner: not this command's output.
    let (o, _, end, p) = feed(
        false,
        &[
            (true, b"late\n\x1eN:go\nok\x1eN:0\n"),
            (false, b"\x1eN:end\n"),
        ],
        3,
    );
    assert_eq!((o.as_slice(), end), (&b"ok"[..], Some(Output::Exit(0))));
    assert!(p.dirty);
    // After the end.
    let (o, _, _, p) = feed(
        false,
        &[
            (true, b"\x1eN:go\nok\x1eN:0\nlate"),
            (false, b"\x1eN:end\n"),
        ],
        5,
    );
    assert_eq!(o, b"ok");
    assert!(p.dirty);
    // A background job reported.
    let (o, _, end, p) = feed(
        false,
        &[
            (true, b"\x1eN:go\nok\x1eN:bg\n\x1eN:0\n"),
            (false, b"\x1eN:end\n"),
        ],
        4,
    );
    assert_eq!((o.as_slice(), end), (&b"ok"[..], Some(Output::Exit(0))));
    assert!(p.dirty);
    // A clean one.
    let (_, _, _, p) = feed(
        false,
        &[(true, b"\x1eN:go\nok\x1eN:0\n"), (false, b"\x1eN:end\n")],
        4,
    );
    assert!(!p.dirty);
}

#[test]
fn a_runner_gone_before_the_acknowledgement_ran_nothing() {
    let (o, e, _, mut p) = feed(true, &[(false, b"steward-pid:9\n"), (true, b"motd\n")], 2);
    assert!(
        o.is_empty() && e.is_empty(),
        "held until the acknowledgement"
    );
    p.signal = Some("KILL".into());
    p.channel_ended();
    assert!(!p.acked);
    assert_eq!(
        p.pop(),
        None,
        "nothing to report: the command runs elsewhere"
    );
    // Gone after it: what came, then the runner's own end.
    let (o, _, _, mut p) = feed(true, &[(true, b"\x1eN:go\nhalf")], 3);
    assert_eq!(o, b"half");
    p.signal = Some("KILL".into());
    p.channel_ended();
    assert_eq!(p.pop(), Some(Output::Signal("KILL".into())));
    assert_eq!(p.pop(), None);
}

#[test]
fn a_marker_split_across_chunks_is_held_back() {
    assert_eq!(holdback(b"abc\x1eN", b"\x1eN:"), 2);
    assert_eq!(holdback(b"abc\x1e", b"\x1eN:"), 1);
    assert_eq!(holdback(b"abc", b"\x1eN:"), 0);
    assert_eq!(holdback(b"\x1eN:", b"\x1eN:"), 0);
    assert_eq!(find(b"xx\x1eN:1\n", b"\x1eN:"), Some(2));
}
