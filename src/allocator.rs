//! The process's memory allocator: jemalloc with a single arena, configured to hand freed
//! memory back to the system within a tenth of a second.
//!
//! Why: `dag`'s promise is a whole-process peak RSS within the memory budget, and most of what
//! glibc's malloc kept above the heap's real size was memory freed by one thread (a decoder, a
//! Parquet encoder on the blocking pool) and held in that thread's arena. Measured on the
//! 66-column, 1M-row TDS table with two connections (`tests/bench/memory.sh`, peak RSS at a
//! 48 MiB budget / at the default budget): glibc 99-103 / 161-172 MiB; glibc with two arenas
//! 103 / 159; glibc with one arena and a 1 MiB trim threshold 71 / 119 but 30% fewer rows/s;
//! mimalloc 133 / 191; jemalloc as shipped 113 / 174; jemalloc with background purging and a
//! 100 ms decay 85-89 / 108-110 at about the same rows/s (a 0 ms decay: 65 / 88 but 25% fewer
//! rows/s). The decay is the trade: pages freed and not reused within it are returned
//! (`MADV_DONTNEED` at once, no lazily freed "muzzy" pages that still count as resident), so
//! memory follows what the tasks hold instead of their high-water mark.
//!
//! One arena, not jemalloc's default of four per CPU: threads are spread over the arenas, and
//! memory a decoder thread freed in its arena is not reused by an encoder allocating in another,
//! so each arena kept its own high-water mark. Measured on the same table (peak RSS at 48 MiB /
//! default): eight arenas 81-87 / 102 MiB, two 80 / -, one 68-69 / 91-93 at the same rows/s
//! (a 200,000-row StarRocks run: 81.5 -> 67.6 MiB; the day-partitioned 1M rows at 48 MiB:
//! 75-77 -> 65). Threads still allocate from their own caches (tcache), so the arena's lock is
//! taken when a cache is refilled or flushed, not per allocation; with one arena the shorter
//! decay (30 or 50 ms) and smaller caches changed nothing measurable.

/// The allocator every thread uses.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once when it initialises (before `main`): one arena, purge from
/// background threads, dirty pages after 100 ms, muzzy pages at once. jemalloc is also the C `malloc` of
/// the process (the libraries in C, zstd and SQLite, allocate through it), so one allocator
/// with one policy holds everything.
#[allow(non_upper_case_globals)]
#[unsafe(no_mangle)]
pub static malloc_conf: &u8 = &MALLOC_CONF[0];

const MALLOC_CONF: &[u8] =
    b"narenas:1,background_thread:true,dirty_decay_ms:100,muzzy_decay_ms:0\0";

#[cfg(test)]
mod tests {
    use tikv_jemalloc_ctl::{opt, raw};

    #[test]
    fn jemalloc_runs_with_our_options() {
        assert!(opt::background_thread::read().unwrap());
        // SAFETY: both options are `ssize_t` in jemalloc's mallctl namespace.
        let dirty: isize = unsafe { raw::read(b"opt.dirty_decay_ms\0") }.unwrap();
        let muzzy: isize = unsafe { raw::read(b"opt.muzzy_decay_ms\0") }.unwrap();
        assert_eq!((dirty, muzzy), (100, 0));
        // SAFETY: `opt.narenas` is an `unsigned` in jemalloc's mallctl namespace.
        let arenas: u32 = unsafe { raw::read(b"opt.narenas\0") }.unwrap();
        assert_eq!(arenas, 1);
    }
}
