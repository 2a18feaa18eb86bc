// mimalloc's option numbers, resolved by name by the C compiler from the very header that
// libmimalloc-sys builds (its `mi_option_e` enum), so a version bump that renumbers the
// options cannot make `sentio` set the wrong one. The Rust crate exports no constants for
// these two.
#include <mimalloc.h>

const int sentio_mi_option_arena_eager_commit = mi_option_arena_eager_commit;
const int sentio_mi_option_purge_delay = mi_option_purge_delay;
