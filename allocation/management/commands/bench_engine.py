"""``python manage.py bench_engine --lines 100000 --json``: the pure engine alone, no database.

Builds ``allocation.engine.synthetic.synthetic_input(lines, seed=seed)`` (not timed), then
measures ``allocation.engine.allocate`` on it ``--repeat`` times, wall clock
(``time.perf_counter``) and this process's CPU time (``time.process_time``, which other
processes loading the machine do not inflate), and prints min and median of each with lines
per second. Beside it, the floor: sorting the same lines' rank keys in the same process.
``--render`` also times rendering every explanation text (paths, constraints, exception
messages and details), the work the engine no longer does for lines nobody reads.
With ``--json`` the last line is one JSON object with every figure. ``--share-mode
pro_rata`` (or ``equal``) runs every line's class in that fair-share mode (issue 15: it
must stay within 1.5x of ``rank``).
"""
from __future__ import annotations

import gc
import json
import statistics
import time
from dataclasses import replace

from django.core.management.base import BaseCommand, CommandParser

from allocation.engine import allocate, rank_key
from allocation.engine.synthetic import synthetic_input


def _timed(function, repeat: int) -> tuple[list[float], list[float], object]:
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        result = None
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return walls, cpus, result


class Command(BaseCommand):
    help = "Benchmark the pure allocation engine on a synthetic workload (no database)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lines", type=int, default=100000, help="Open order lines to generate.")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--repeat", type=int, default=3, help="Timed runs (min and median are reported).")
        parser.add_argument("--render", action="store_true", help="Also time rendering every explanation text.")
        parser.add_argument("--json", action="store_true", help="End with one JSON line of the figures.")
        parser.add_argument("--share-mode", choices=("rank", "pro_rata", "equal"), default="rank",
                            help="Fair share mode of every class (default rank, as generated).")

    def handle(self, *args, lines: int, seed: int, repeat: int, render: bool, **options) -> None:
        repeat = max(1, repeat)
        inp = synthetic_input(lines, seed=seed)
        share_mode = options.get("share_mode") or "rank"
        if share_mode != "rank":
            shared: dict[int, object] = {}
            inp = replace(inp, lines=tuple(
                replace(line, settings=shared.setdefault(id(line.settings), replace(line.settings, share_mode=share_mode)))
                for line in inp.lines))
        count = len(inp.lines)
        keys = [rank_key(line, inp.as_of) for line in inp.lines]
        floor_walls, floor_cpus, _ = _timed(lambda: sorted(keys), repeat)
        walls, cpus, result = _timed(lambda: allocate(inp), repeat)
        figures = {
            "lines": count,
            "seed": seed,
            "share_mode": share_mode,
            "fairness_classes": len(result.fairness),
            "price_of_fairness_max": round(max((p.price for p in result.fairness), default=0.0), 6),
            "repeat": repeat,
            "decisions": len(result.lines),
            "exceptions": len(result.exceptions),
            "engine_wall_s_min": round(min(walls), 4),
            "engine_wall_s_median": round(statistics.median(walls), 4),
            "engine_cpu_s_min": round(min(cpus), 4),
            "engine_cpu_s_median": round(statistics.median(cpus), 4),
            "engine_lines_per_s_wall": round(count / min(walls)),
            "engine_lines_per_s_wall_median": round(count / statistics.median(walls)),
            "engine_lines_per_s_cpu": round(count / min(cpus)),
            "engine_lines_per_s_cpu_median": round(count / statistics.median(cpus)),
            "floor_sort_cpu_s_min": round(min(floor_cpus), 4),
            "floor_sort_wall_s_min": round(min(floor_walls), 4),
        }
        self.stdout.write(
            f"engine: {count} lines, {len(result.lines)} decisions, {len(result.exceptions)} exceptions; "
            f"wall min {min(walls):.3f}s median {statistics.median(walls):.3f}s "
            f"({figures['engine_lines_per_s_wall']:,} / {figures['engine_lines_per_s_wall_median']:,} lines/s); "
            f"CPU min {min(cpus):.3f}s median {statistics.median(cpus):.3f}s "
            f"({figures['engine_lines_per_s_cpu']:,} / {figures['engine_lines_per_s_cpu_median']:,} lines/s)"
        )
        self.stdout.write(
            f"floor: sorting {count} rank keys takes CPU {min(floor_cpus):.3f}s, wall {min(floor_walls):.3f}s (min of {repeat})"
        )
        if render:

            def render_all() -> int:
                total = 0
                for decision in result.lines:
                    total += len(decision.path) + len(decision.constraints) + len(decision.factors)
                for exception in result.exceptions:
                    total += len(exception.message) + len(exception.details)
                return total

            render_walls, render_cpus, _ = _timed(render_all, repeat)
            figures["render_all_cpu_s_min"] = round(min(render_cpus), 4)
            self.stdout.write(
                f"rendering every explanation when read: CPU min {min(render_cpus):.3f}s, wall {min(render_walls):.3f}s"
            )
        if options.get("json"):
            self.stdout.write(_dumps(figures))


def _dumps(figures: dict) -> str:
    return json.dumps(figures, sort_keys=True)
