"""The bottom layer: what every stage needs and nothing above it knows.

Errors (:mod:`.errors`), declared constraints (:mod:`.constraints`), device names
(:mod:`.devices`), output paths (:mod:`.paths`), atomic files (:mod:`.files`), figures on the
Agg canvas (:mod:`.figures`), locks (:mod:`.locks`), signals (:mod:`.signals`), torch thread
counts (:mod:`.threads`) and small numerical routines (:mod:`.numeric`). Nothing here imports
torch at module level, or anything from the layers above.
"""
