"""``tinyformula data``: prepare a dataset once into a memory-mapped cache, or check one.

``data prepare SOURCE`` decodes a photo folder (or reads a built-in dataset) once, in
parallel on every core, into the prepared cache that searches, ``train`` and every worker
open memory-mapped; ``data verify SOURCE`` reads a cache back against its checksums (and its
source, when it is here) - what a cluster worker's copy is checked with.
"""

from __future__ import annotations

import sys

from ..data.settings import BAD_IMAGES, PrepareSettings
from .arguments import checked
from .output import print_json, print_rows


def register(sub) -> None:
    p = sub.add_parser(
        "data", help="prepare a dataset once into a shared, memory-mapped cache; check one",
        description="Datasets are read through a prepared cache: decoded once into uint8 "
                    "arrays that every run and every worker process maps into memory "
                    "(shared, not copied). Built-in datasets are prepared on first use; a "
                    "photo folder is prepared by 'fit', 'train' and 'validate' when they "
                    "first meet it, or ahead of time with 'data prepare'.")
    commands = p.add_subparsers(dest="data_command", metavar="ACTION")
    prepare = commands.add_parser(
        "prepare", help="decode a dataset once into its prepared cache",
        description="Decode SOURCE once, in parallel on every core (progress and ETA on "
                    "stderr), into a prepared cache: uint8 arrays (N, C, S, S) per split, "
                    "labels, class names and a manifest with checksums. An interrupted "
                    "preparation resumes when run again; a cache already up to date is "
                    "left as it is; a changed source is prepared again (and refused by "
                    "fit, train and validate until it is).",
        epilog="examples: tinyformula data prepare ~/photos --size 160 | "
               "tinyformula data prepare imagefolder:/data/imagenet100 --out /fast/in100 "
               "(then --data prepared:/fast/in100)")
    prepare.add_argument("source", metavar="SOURCE",
                         help="a dataset name as --data takes it (fashion-mnist, digits, "
                              "cifar10, cifar100, imagefolder:PATH) or a photo folder (one "
                              "sub-folder per class, optionally under train/ and val/)")
    constraints = PrepareSettings.constraints
    checked(prepare, "--size", constraints["size"], default=None, metavar="S",
            help="stored side of a photo in pixels (default 224); candidates still see "
                 "int(224 r) px")
    prepare.add_argument("--out", metavar="DIR",
                         help="where the cache goes (default: under $TINYFORMULA_DATA_CACHE or "
                              "~/.cache/tinyformula/prepared, where --data NAME finds it; "
                              "elsewhere, use it as --data prepared:DIR)")
    prepare.add_argument("--data-dir", metavar="DIR",
                         help="the folder of a built-in dataset's files (as fit --data-dir)")
    checked(prepare, "--workers", constraints["workers"], default=None, metavar="N",
            help="decoding processes (default: one per usable core)")
    prepare.add_argument("--bad-images", choices=BAD_IMAGES, default="refuse",
                         help="an unreadable or truncated image: refuse (stop, naming the "
                              "first few; the work done is kept) or skip (leave it out, counted "
                              "in the manifest) (default: refuse)")
    prepare.add_argument("--exact", action="store_true",
                         help="decode every JPEG at full size before resizing (no draft mode); "
                              "slower, differs by a few levels at most")
    prepare.add_argument("--force", action="store_true",
                         help="prepare again even when the cache is up to date")
    prepare.add_argument("--json", action="store_true",
                         help="print one JSON object: folder, source, status, checksum, train, "
                              "val, size, channels, bytes, decoded, seconds, images_per_s, "
                              "skipped, skipped_files")
    prepare.set_defaults(run=run_prepare)
    verify = commands.add_parser(
        "verify", help="check a prepared cache against its checksums and its source",
        description="Read every array of a prepared cache back against its digests, compare "
                    "its checksum with --checksum (a search's driver's, for a copy on a "
                    "cluster worker) and its source, when on this machine, with what was "
                    "prepared. Exit status 2 on any difference.")
    verify.add_argument("source", metavar="SOURCE",
                        help="a dataset name, imagefolder:PATH, prepared:DIR, or a folder")
    verify.add_argument("--data-dir", metavar="DIR",
                        help="the folder of a built-in dataset's files")
    verify.add_argument("--checksum", metavar="HEX",
                        help="the checksum the cache must have (from 'data prepare' or the "
                             "driver's machine)")
    verify.add_argument("--json", action="store_true",
                        help="print one JSON object: folder, source, checksum, train, val, "
                             "size, channels, bytes, version, prepared_by, created, skipped, "
                             "source_checked")
    verify.set_defaults(run=run_verify)

    def usage(args) -> int:  # 'tinyformula data' alone: what it can do
        p.print_help(sys.stderr)
        return 2

    p.set_defaults(run=usage)


def run_prepare(args) -> int:
    from ..data.loading import prepare_dataset

    result = prepare_dataset(args.source, args.data_dir, size=args.size, out=args.out,
                             workers=args.workers, bad_images=args.bad_images,
                             draft=not args.exact, force=args.force,
                             log=lambda message: print(f"tinyformula: {message}",
                                                       file=sys.stderr))
    if args.json:
        print_json(result.to_dict())
        return 0
    rows = [("dataset", result.source), ("cache", result.folder),
            ("status", result.status + (f" ({result.changes})" if result.changes else "")),
            ("images", f"{result.train:,} train, {result.val:,} held out, "
                       f"{result.channels}x{result.size}x{result.size} uint8"),
            ("size", f"{result.bytes:,} bytes ({result.bytes / 2**30:.2f} GiB)"),
            ("checksum", result.checksum)]
    if result.decoded:
        rows.append(("decoded", f"{result.decoded:,} images in {result.seconds:.1f} s "
                                f"({result.images_per_s:.0f} images/s)"))
    if result.skipped:
        rows.append(("skipped", f"{result.skipped:,} unreadable: "
                                f"{', '.join(result.skipped_files)}"
                                f"{', ...' if result.skipped > len(result.skipped_files) else ''}"))
    print_rows(rows)
    return 0


def run_verify(args) -> int:
    from ..data.loading import verify_dataset

    found = verify_dataset(args.source, args.data_dir, checksum=args.checksum)
    if args.json:
        print_json(found)
        return 0
    print_rows([("dataset", found["source"]), ("cache", found["folder"]),
                ("images", f"{found['train']:,} train, {found['val']:,} held out, "
                           f"{found['channels']}x{found['size']}x{found['size']} uint8"),
                ("checksum", f"{found['checksum']} (every array read back: ok)"),
                ("source", "unchanged since prepared" if found["source_checked"]
                 else "not on this machine (not checked)"),
                ("prepared", f"{found['created']} by tinyformula {found['prepared_by']} "
                             f"(cache format {found['version']})")])
    return 0
