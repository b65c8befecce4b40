"""Seed 000, part 2: what the face data is, and how good its annotation is.

Counts per actor: list lines, what the replay mirror (what the original URLs answered)
gives for each line and why a line yields no image, the originals available, and the crops
per split. Then uncropped originals with their face boxes drawn next to their crops, the
spread of box sizes and aspect ratios, and how well the crops align: the mean crop, the
per-pixel standard deviation, and each crop's correlation with the mean crop.
"""
from collections import Counter

import numpy as np
from PIL import Image

import facescrub
from coursedata.cli import run_main
from coursedata.paths import data_dir
from experiments.common.cli import experiment_parser
from experiments.common.plots import blank, image_grid, plt
from experiments.common.results import Results
from facescrub.prepare import CropSpec

# Part 2 prepares the dataset: the crops it shows, and (except with --quick) the sets the later parts read, all in
# one pass over the photos, each decoded once (the decoding was nine tenths of each set's cropping; make report
# starts those parts after this one): parts 3-6 at 32x32 gray and 64x64 RGB and gray, seed 004's CNN at 91x91
# gray, the face ResNet of parts 7-9 at 150x150 RGB.
OWN_CROPS = [CropSpec(32), CropSpec(64, color=True)]
CROPS_FOR_LATER_PARTS = [CropSpec(64), CropSpec(91), CropSpec(150, color=True)]

EXAMPLES_PER_ACTOR = 1
SHOWN_PIXELS = 400  # originals are drawn downsampled to at most this many pixels a side
OUTLIERS = 8
LOW_CORRELATION = 0.2  # crops correlating less than this with the mean crop are counted
SQUARE_ASPECT_STD = 0.01  # boxes whose height/width varies less than this are called square


def replay_answers(path=None):
    """{url: (status, body path relative to the facescrub folder or '')} from replay.tsv."""
    path = path or data_dir() / "facescrub" / "replay.tsv"
    answers = {}
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        url, status, body = (line.split("\t") + ["", ""])[:3]
        answers[url] = (status, body)
    return answers


def line_outcome(face, answers):
    """Why a list line does or does not give its image, from what its URL answered.

    'ok': the body is the listed image (its file is named by its SHA-256); 'hash_mismatch':
    a body came, but another one (after a 301 redirect: 'redirect_hash_mismatch');
    'http_<code>', 'timeout', 'connection_reset'; 'not_in_replay'.
    """
    if face.url not in answers:
        return "not_in_replay"
    status, body = answers[face.url]
    if status == "TIMEOUT":
        return "timeout"
    if status == "RESET":
        return "connection_reset"
    if body:
        if body.startswith("images/") and body[len("images/"):].split(".")[0] == face.sha256:
            return "ok"
        return "redirect_hash_mismatch" if status == "301" else "hash_mismatch"
    return f"http_{status}"


def count_table(actors, faces, answers, available, dataset):
    """Rows of per-actor counts: list lines, line outcomes, originals available, crops per split."""
    outcomes = {actor: Counter() for actor in actors}
    for face in faces:
        outcomes[face.actor][line_outcome(face, answers)] += 1
    reasons = sorted({reason for counts in outcomes.values() for reason in counts} - {"ok"})
    rows = []
    for k, actor in enumerate(actors):
        row = {"actor": actor, "list_lines": sum(outcomes[actor].values()),
               "distinct_images_listed": len({f.sha256 for f in faces if f.actor == actor}),
               "lines_ok": outcomes[actor]["ok"]}
        row.update({f"rejected_{reason}": outcomes[actor][reason] for reason in reasons})
        row["originals_available"] = available[actor]
        row.update({f"crops_{name}": int(np.sum(getattr(dataset, name).y == k)) for name in ("train", "val", "test")})
        rows.append(row)
    return rows


def box_statistics(photos):
    """Box width, height (pixels), aspect height/width and box width / image width, each (N,)."""
    sizes = []
    for photo in photos:
        with Image.open(photo.path) as image:
            image_width = image.size[0]
        x1, y1, x2, y2 = photo.bbox
        sizes.append((x2 - x1, y2 - y1, image_width))
    width, height, image_width = np.array(sizes, dtype=float).T
    return {"width": width, "height": height, "aspect": height / width, "relative_width": width / image_width}


def alignment(crops):
    """Mean crop (S, S), per-pixel std (S, S), and each crop's Pearson correlation with the mean crop (N,)."""
    mean, std = crops.mean(axis=0), crops.std(axis=0)
    flat = crops.reshape(len(crops), -1)
    centered = flat - flat.mean(axis=1, keepdims=True)
    template = mean.ravel() - mean.mean()
    correlation = centered @ template / (np.linalg.norm(centered, axis=1) * np.linalg.norm(template) + 1e-12)
    return mean, std, correlation


def originals_figure(examples, crops):
    """Each original with its box drawn (top row) above its 64x64 crop (bottom row)."""
    fig, axes = plt.subplots(2, len(examples), figsize=(2.6 * len(examples), 5.4), squeeze=False)
    for column, (photo, crop) in enumerate(zip(examples, crops)):
        with Image.open(photo.path) as image:
            width, height = image.size
            image.thumbnail((SHOWN_PIXELS, SHOWN_PIXELS))
            axes[0, column].imshow(np.asarray(image.convert("RGB")), extent=(0, width, height, 0))
        x1, y1, x2, y2 = photo.bbox
        axes[0, column].add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="lime", lw=2))
        axes[0, column].set_title(f"{photo.actor}\nbox {x2 - x1}x{y2 - y1} px", fontsize=8)
        axes[0, column].set(xlabel="x (px)", ylabel="y (px)")
        axes[0, column].tick_params(labelsize=6)
        axes[1, column].imshow(crop)
        axes[1, column].set_title("crop, 64x64", fontsize=8)
        blank(axes[1, column])
    fig.suptitle("uncropped originals with their FaceScrub boxes, and the crops")
    fig.tight_layout()
    return fig


def boxes_figure(boxes):
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].hist(boxes["width"], bins=30, color="tab:blue")
    axes[0].set(xlabel="box width (px)", ylabel="originals", title="box sizes")
    axes[1].hist(boxes["aspect"], bins=30, color="tab:orange")
    axes[1].set(xlabel="box height / width", ylabel="originals", title="box aspect ratios")
    axes[2].hist(boxes["relative_width"], bins=30, color="tab:green")
    axes[2].set(xlabel="box width / image width", ylabel="originals", title="face size in the photo")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def alignment_figure(mean, std, correlation):
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, image, title in ((axes[0], mean, "mean crop (32x32 gray)"), (axes[1], std, "per-pixel std")):
        shown = ax.imshow(image, cmap="gray" if image is mean else "viridis")
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        ax.set(title=title, xlabel="x (px)", ylabel="y (px)")
    axes[2].hist(correlation, bins=30, color="tab:purple")
    axes[2].axvline(LOW_CORRELATION, color="k", ls="--", label=f"r = {LOW_CORRELATION}")
    axes[2].set(xlabel="correlation with the mean crop", ylabel="crops", title="how well each crop aligns")
    axes[2].legend()
    fig.tight_layout()
    return fig


def table_markdown(rows):
    header = list(rows[0])
    lines = ["| " + " | ".join(h.replace("_", " ") for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[h]) for h in header) + " |" for row in rows]
    totals = ["**total**"] + [str(sum(row[h] for row in rows)) for h in header[1:]]
    return "\n".join(lines + ["| " + " | ".join(totals) + " |"])


def findings(metrics, rows):
    """What the summary concludes about the lists, boxes and crops, each a named value."""
    box, align = metrics["boxes"], metrics["alignment"]
    rejected = {key[len("rejected_"):]: sum(row[key] for row in rows) for key in rows[0] if key.startswith("rejected_")}
    top = max(rejected, key=rejected.get) if rejected else "none"
    lines_ok = sum(row["lines_ok"] for row in rows)
    return {
        "list_lines": sum(row["list_lines"] for row in rows),
        "lines_ok": lines_ok,
        "lines_rejected": sum(rejected.values()),
        "top_rejection": top,
        "top_rejection_lines": rejected.get(top, 0),
        "lines_naming_a_named_original": lines_ok - metrics["originals"],
        "boxes_square": box["aspect_std"] < SQUARE_ASPECT_STD,
        "face_varies_less_than_border": align["std_center"] < align["std_border"],
        "low_correlation_share": align["low_correlation"] / align["crops"],
    }


def summary(metrics, rows):
    box, align = metrics["boxes"], metrics["alignment"]
    found = findings(metrics, rows)
    shape = ("every box is square, so resizing to a square never distorts a face" if found["boxes_square"] else
             "the boxes vary in shape, so resizing them to squares stretches some faces")
    alignment = ("the inner face varies less than its surroundings, so the boxes put it at nearly the same place in "
                 "every crop, while hair and background vary" if found["face_varies_less_than_border"] else
                 "the inner face varies as much as its surroundings, so the boxes do not align faces well")
    return f"""# Part 2: the face data

{table_markdown(rows)}

List lines skipped while parsing the course's files (all people): {metrics['skipped_list_lines'] or 'none'}.
Originals that could not be decoded: {metrics['unreadable']}.

Of {found['list_lines']} list lines of the six actors, {found['lines_ok']} gave the listed image
(SHA-256 matched) and {found['lines_rejected']} did not; the most common reason was `{found['top_rejection']}`
({found['top_rejection_lines']} lines). Every answer whose bytes did not hash to the listed SHA-256 (error
pages, placeholders after redirects) is rejected, which leaves {metrics['originals']} distinct originals
({found['lines_naming_a_named_original']} of the good lines name an original another line names too) and
{align['crops']} crops.
The boxes are {box['width_median']:.0f} px wide at the median (from {box['width_min']:.0f} to
{box['width_max']:.0f} px; {box['relative_width_median']:.0%} of the image width at the median), so
crops are resampled by very different factors before reaching 32x32. Their aspect ratio
height/width is {box['aspect_mean']:.3f} +- {box['aspect_std']:.3f}: {shape}.

The mean of the {align['crops']} 32x32 crops (`alignment.png`) shows eyes, nose and mouth at fixed places,
and the per-pixel standard deviation is {align['std_center']:.3f} in the central 16x16 against
{align['std_border']:.3f} on the border: {alignment}.
Each crop correlates with the mean crop by {align['correlation_median']:.2f} at the median and
{align['low_correlation']} ({found['low_correlation_share']:.1%}) by less than {LOW_CORRELATION}. The least
typical crops are in `least_typical_crops.png`: a low correlation can come from side lighting, a dark
background or a turned head as well as from a misplaced box, so it flags crops to inspect rather than
proving a bad box. Alignment matters because a
fully-connected network on pixels treats input (i, j) as the same part of the face in every photo.
"""


def main(argv=None):
    parser = experiment_parser("part2_faces", __doc__)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    report = facescrub.read_lists()
    photos = facescrub.originals()
    gray, color, *_ = facescrub.load_face_sets(OWN_CROPS if args.quick else OWN_CROPS + CROPS_FOR_LATER_PARTS)
    with Results(args.out, args) as results:
        rows = count_table(gray.actors, report.faces, replay_answers(), Counter(p.actor for p in photos), gray)
        results.write_json("counts.json", rows)

        crop_of = {sha: x for split in (color.train, color.val, color.test) for sha, x in zip(split.sha256, split.x)}
        examples = []
        for actor in gray.actors:
            candidates = [p for p in photos if p.actor == actor and p.sha256 in crop_of]
            examples += [candidates[i] for i in rng.choice(len(candidates), EXAMPLES_PER_ACTOR, replace=False)]
        results.figure(originals_figure(examples, [crop_of[p.sha256] for p in examples]), "originals")

        measured = photos[:12] if args.quick else photos
        boxes = box_statistics(measured)
        results.figure(boxes_figure(boxes), "boxes")

        crops = np.concatenate([gray.train.x, gray.val.x, gray.test.x])
        mean, std, correlation = alignment(crops)
        results.figure(alignment_figure(mean, std, correlation), "alignment")
        worst = np.argsort(correlation)[:OUTLIERS]
        results.figure(image_grid(crops[worst], 1, OUTLIERS, titles=[f"r = {correlation[i]:.2f}" for i in worst],
                                  suptitle="crops least like the mean crop"), "least_typical_crops")

        quarter = crops.shape[1] // 4
        center = np.zeros(std.shape, bool)
        center[quarter:-quarter, quarter:-quarter] = True
        results.metrics.update(
            per_actor=rows, originals=len(photos), skipped_list_lines=dict(report.skipped),
            unreadable=len(gray.unreadable), examples=[p.sha256 for p in examples],
            boxes={"measured": len(measured), **{f"{name}_{stat}": float(getattr(np, stat)(values))
                                                 for name, values in boxes.items()
                                                 for stat in ("mean", "std", "min", "median", "max")}},
            alignment={"crops": len(crops), "std_mean": float(std.mean()), "std_center": float(std[center].mean()),
                       "std_border": float(std[~center].mean()), "correlation_median": float(np.median(correlation)),
                       "low_correlation": int(np.sum(correlation < LOW_CORRELATION))})
        print(table_markdown(rows))
        results.summary(summary(results.metrics, rows))


if __name__ == "__main__":
    run_main(main)
