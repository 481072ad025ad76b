"""`make bench` rewrites each benchmark's output in docs/benchmarks.md and keeps everything written by hand."""

from __future__ import annotations

from benchmarks.run_all import update_document

OLD = """# Benchmarks

Last run 2026-01-01 with `python -m benchmarks.run_all` on: old machine.

## bench_a.py

`python -m benchmarks.bench_a` (3 s)

```
old output a
```

A note written by hand about bench_a, with an earlier run:

```
earlier run
```

## GPU

Hand-written GPU section.
"""


def test_outputs_are_replaced_and_hand_written_text_is_kept():
    new = update_document(
        OLD,
        "Last run 2026-02-02 on: new machine.",
        {
            "bench_a.py": "`python -m benchmarks.bench_a --quick` (1 s)\n\n```\nnew output a\n```\n",
            "bench_b.py": "`python -m benchmarks.bench_b` (2 s)\n\n```\noutput b\n```\n",
        },
    )
    assert "Last run 2026-02-02 on: new machine." in new and "old machine" not in new
    assert "new output a" in new and "old output a" not in new
    assert "A note written by hand about bench_a" in new and "earlier run" in new
    assert new.index("## bench_b.py") < new.index("## GPU")
    assert new.rstrip().endswith("Hand-written GPU section.")


def test_a_first_run_writes_a_whole_document():
    new = update_document("", "Last run today.", {"bench_a.py": "`cmd` (1 s)\n\n```\nout\n```\n"})
    assert new.startswith("# Benchmarks\n\nLast run today.")
    assert "## bench_a.py\n\n`cmd` (1 s)" in new
