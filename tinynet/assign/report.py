"""What grading prints and writes: the score table, and a class's scores and feedback files."""
import csv
import io
import json
import os
import tempfile
from pathlib import Path


def score_table(scores) -> str:
    """The table an autograder posts: one row per task, and the total."""
    rows = [f"{'task':<6} {'title':<34} {'cases':>9}  {'status':<19} diagnosis"]
    for s in scores:
        rows.append(f"{s.task.id:<6} {s.task.title[:34]:<34} {s.passed:>4}/{s.total:<4}  {s.status:<19} "
                    f"{s.diagnosis[:160]}")
    rows.append(f"{sum(s.complete for s in scores)} of {len(scores)} tasks complete")
    return "\n".join(rows)


def write_atomically(path: Path, text: str):
    """Write text to path through a temporary file in the same folder: never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as file:
        file.write(text)
    os.replace(file.name, path)


def write_class_results(results: dict, out: Path, seed: int, isolation: str):
    """out/scores.csv (one row per student: each task's cases passed, tasks complete), out/scores.json
    (everything, with the seed of the cases and the isolation in force) and out/feedback/<student>.txt."""
    tasks = next(iter(results.values()), [])
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["student", *(f"task {s.task.id}" for s in tasks), "tasks complete", "tasks"])
    for student, scores in results.items():
        writer.writerow([student, *(f"{s.passed}/{s.total}" for s in scores), sum(s.complete for s in scores),
                         len(scores)])
    write_atomically(out / "scores.csv", table.getvalue())
    write_atomically(out / "scores.json", json.dumps({
        "seed": seed, "isolation": isolation,
        "students": {student: [{"task": s.task.id, "title": s.task.title, "passed": s.passed, "total": s.total,
                                "status": s.status, "diagnosis": s.diagnosis} for s in scores]
                     for student, scores in results.items()}}, indent=1) + "\n")
    for student, scores in results.items():
        write_atomically(out / "feedback" / f"{student}.txt", score_table(scores) + "\n")
