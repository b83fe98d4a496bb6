extension IOIterator {
    /// Checks one extraction call against the extraction contract and returns the
    /// bytes it may describe: 0 means the call describes nothing and returns 0.
    ///
    /// ## The extraction contract
    ///
    /// Every extractor — to pages (``extractPages(into:maxPages:maxSize:ledger:)``), to
    /// a scatter table (ScatterList's `extract(maxSize:into:maxEntries:granularity:ledger:)`)
    /// and to SGEs (RDMASGE's `extract(maxSize:into:maxSGEs:keys:ledger:)`) — begins
    /// with this call and keeps this contract. Its `capacity` is the most outputs the
    /// call may append: max pages, max entries or max SGEs.
    ///
    /// 1. **Arguments.** A negative `maxSize` or `capacity` is a programmer error and traps.
    /// 2. **The kind comes first.** Whatever `maxSize`, `capacity` and ``count`` are:
    ///    - DISCARD throws ``IOIteratorError/notExtractable(_:)``: it describes no memory.
    ///      (The kernel returns 0 for a max size of 0 before it looks at the kind; we
    ///      answer by the kind alone, so that the misuse shows on the first call.)
    ///    - PIPE as a source throws ``IOIteratorError/pipeIsDestinationOnly``: a pipe
    ///      is filled, never read. (No public initializer makes one; every extractor
    ///      still refuses it rather than fill the pipe.)
    ///    - PIPE as a destination has no memory until it is written. Page extraction
    ///      makes that memory (fresh pages appended to the pipe); a scatter table or
    ///      SGEs only describe memory that exists, so they throw
    ///      ``IOIteratorError/notExtractable(_:)`` (`acceptsPipe: false`).
    /// 3. **The byte limit** is `maxSize` clamped to ``count`` and to
    ///    ``maxReadWriteCount`` (the kernel's `MAX_RW_COUNT`) — for SGEs too.
    /// 4. **Nothing to do is not an error.** When the limit or `capacity` is 0 the call
    ///    returns 0 and changes nothing. (The kernel's `extract_iter_to_sg` returns 0
    ///    for either; its page extraction fails with `ENOMEM` on 0 pages, with a
    ///    warning that the caller should have prevented it — we take the scatterlist's
    ///    answer for all three.) Checks particular to one target (a scatter table's
    ///    merged granularity) run only when there is something to describe.
    /// 5. **Output.** The call appends after what the output holds, never rewrites it,
    ///    returns the bytes it described and advances the iterator by exactly that
    ///    many. It stops early, without error, when `capacity` outputs were appended
    ///    or the limit is reached; zero-length outputs are never appended.
    /// 6. **Errors leave no trace** (unlike the kernel): the iterator is where it was,
    ///    nothing was appended, and every pin and reference the call took is released.
    /// 7. **One error strategy.** An error of the iterator layer is an
    ///    ``IOIteratorError``: page extraction throws it as it is; ScatterList's and
    ///    RDMASGE's extractors wrap it, unchanged, in their `.iterator(_:)` case
    ///    (`ScatterListError.iterator`, `RDMAError.iterator`). Only failures of their
    ///    own layer (a bad max segment; a key that does not cover the memory, an MR
    ///    registration) get cases of their own. No error is converted with a trap.
    ///
    /// The checks are a few comparisons, made once per call before any output is
    /// touched; nothing is added per page, entry or SGE.
    ///
    /// - Parameters:
    ///   - maxSize: The most bytes the caller asked for.
    ///   - capacity: The most outputs the call may append.
    ///   - acceptsPipe: Whether the extractor makes the memory of a PIPE destination
    ///     (page extraction does; a scatter table or SGEs do not).
    /// - Returns: The byte limit of the call; 0 when it must return 0.
    /// - Throws: ``IOIteratorError/notExtractable(_:)`` for DISCARD, and for PIPE when
    ///   `acceptsPipe` is false; ``IOIteratorError/pipeIsDestinationOnly`` for a PIPE source.
    @inlinable
    public func extractionLimit(maxSize: Int, capacity: Int, acceptsPipe: Bool) throws(IOIteratorError) -> Int {
        precondition(maxSize >= 0, "maxSize is not negative")
        precondition(capacity >= 0, "the output capacity is not negative")
        switch kind {
        case .discard:
            throw .notExtractable(kind)
        case .pipe:
            guard direction == .destination else { throw .pipeIsDestinationOnly }
            guard acceptsPipe else { throw .notExtractable(kind) }
        default:
            break
        }
        return capacity == 0 ? 0 : Swift.min(maxSize, count, maxReadWriteCount)
    }
}
