# Sourced by the benchmark scripts: sets DAG, the dag binary they measure. By default it is the
# build dag ships as, `cargo build --profile dist` (whole-program optimised: less resident code,
# so lower peaks than the release build the tests use); DAG=/absolute/path/to/dag measures
# another build (an older commit, or the release build).
[ -n "${DAG:-}" ] || cargo build --profile dist --quiet --bin dag
DAG="${DAG:-$PWD/target/dist/dag}"
