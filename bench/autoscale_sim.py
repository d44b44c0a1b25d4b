#!/usr/bin/env python3
"""The autoscaler's deterministic simulation, plotted: replicas over time under step, burst,
sawtooth and diurnal load, with the drain protocol and without it.

  python3 bench/autoscale_sim.py                 # -> bench/out/autoscale/autoscale_sim.png
  python3 bench/autoscale_sim.py --out DIR --cold-start 5 --seeds 1,2,3

What it does: builds `autoscale_sim` (release preset; src/operator/autoscale_sim.cc drives the
real autoscaler, src/operator/autoscaler.cc, with a fast-forwarded clock), runs every profile
per seed with the drain protocol and once without it (a ReplicaSet removing pods while they serve,
the engine's SIGTERM drain cut short to 2 s), writes the per-step CSVs and one PNG, and prints a
Markdown table: requests, dropped (hold timeout 503, full queue 429), cut by a scale-down,
flaps, scale-ups and -downs, time to scale up after the step, when zero was first reached and
the queueing wait p50/p99/max.

The simulated clock is deterministic: the same seed gives the same run on any machine, so these
figures are not noisy as the wall-clock benchmarks are.
"""
import argparse
import csv
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MATPLOTLIB_VERSION = "3.11.2"


def log(msg):
    print(f"[autoscale_sim] {msg}", file=sys.stderr, flush=True)


def ensure_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        log(f"installing matplotlib=={MATPLOTLIB_VERSION} from PyPI")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                        f"matplotlib=={MATPLOTLIB_VERSION}"], check=True)


def build(jobs):
    subprocess.run(["cmake", "--preset", "release"], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", "--preset", "release", f"-j{jobs}", "--target",
                    "autoscale_sim"], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return os.path.join(REPO, "build/release/bench/autoscale_sim")


def run(binary, out, extra):
    os.makedirs(out, exist_ok=True)
    text = subprocess.run([binary, "--out", out] + extra, check=True, capture_output=True,
                          text=True).stdout
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def plot(out_dir, png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loads = ["step", "burst", "sawtooth", "diurnal"]
    fig, axes = plt.subplots(len(loads), 1, figsize=(12, 3.2 * len(loads)))
    for ax, name in zip(axes, loads):
        rows = read_csv(os.path.join(out_dir, "drain", "seed1", f"{name}.csv"))
        t = [float(r["t"]) / 60 for r in rows]
        ax.step(t, [int(r["spec"]) for r in rows], where="post", color="tab:blue",
                label="spec.replicas")
        ax.step(t, [int(r["ready"]) for r in rows], where="post", color="tab:green",
                label="ready replicas")
        panic = [float(r["t"]) / 60 for r in rows if r["mode"] == "panic"]
        if panic:
            ax.scatter(panic, [0.2] * len(panic), marker="|", color="tab:red", label="panic")
        ax.set_ylabel("replicas")
        ax.set_ylim(bottom=0)
        rax = ax.twinx()
        rax.plot(t, [float(r["rate"]) for r in rows], color="tab:orange", alpha=0.8,
                 label="offered load (req/s)")
        rax.plot(t, [float(r["in_flight"]) / 6 for r in rows], color="tab:gray", alpha=0.5,
                 linewidth=0.8, label="in flight / target (6)")
        rax.set_ylabel("req/s, in flight / 6")
        rax.set_ylim(bottom=0)
        ax.set_title(name)
        lines = ax.get_legend_handles_labels()
        rlines = rax.get_legend_handles_labels()
        ax.legend(lines[0] + rlines[0], lines[1] + rlines[1], loc="upper right", fontsize=7)
    axes[-1].set_xlabel("simulated minutes")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    log(f"wrote {png}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(REPO, "bench/out/autoscale"))
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--cold-start", type=float, default=20.0,
                   help="seconds from pod creation to ready (default 20)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args()

    binary = build(args.jobs)
    results = []
    for seed in args.seeds.split(","):
        for drain in (True, False):
            extra = ["--seed", seed, "--cold-start", str(args.cold_start)]
            if not drain:
                extra += ["--no-drain", "--shutdown-timeout", "2"]
            out = os.path.join(args.out, "drain" if drain else "no-drain", f"seed{seed}")
            for r in run(binary, out, extra):
                r["seed"] = int(seed)
                results.append(r)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(results, f, indent=1)

    print("| load | drain | seed | requests | dropped 503/429 | cut | flaps | ups/downs | "
          "step: spec 6 / ready 6 (s) | zero at (s) | wait p50/p99/max (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        step = (f"{r['step_time_to_spec_6_s']:.0f} / {r['step_time_to_ready_6_s']:.0f}"
                if "step_time_to_spec_6_s" in r else "")
        print(f"| {r['load']} | {'yes' if r['drain'] else 'no (2 s SIGTERM)'} | {r['seed']} | "
              f"{r['arrived']} | {r['dropped_hold_timeout']}/{r['dropped_queue_full']} | "
              f"{r['cut_by_scale_down']} | {r['flaps_60s']} | {r['scale_ups']}/{r['scale_downs']} | "
              f"{step} | {r['first_zero_at_s']:.0f} | "
              f"{r['wait_p50_s']:.1f}/{r['wait_p99_s']:.1f}/{r['wait_max_s']:.1f} |")

    if not args.no_plot:
        ensure_matplotlib()
        plot(args.out, os.path.join(args.out, "autoscale_sim.png"))


if __name__ == "__main__":
    main()
