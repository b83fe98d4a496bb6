/// References in batches: extraction to SGEs looks a region up once, reuses the answer
/// for every later piece inside its coverage, and takes or gives back the references
/// of a run of SGEs under one key in one step.
///
/// Neither call looks memory up: ``retain(lkey:count:)`` adds to a region the caller
/// already holds from ``resolve(_:access:retaining:)``, which stays the one gate through
/// which the cache hands a region out.
extension MRCache {
    /// `true`: ``retain(lkey:count:)`` takes any number of references in one atomic step.
    public var retainsInBatches: Bool { true }

    /// Takes `count` more references on the region with `lkey`, on which the caller
    /// holds at least one from a retaining ``resolve(_:access:retaining:)``; each is
    /// given back by ``release(lkey:)`` or ``release(lkey:count:)``. Usually one atomic
    /// addition and no lock; never allocates.
    public func retain(lkey: UInt32, count: Int) {
        precondition(count >= 0, "cannot retain \(count) references")
        guard count > 0, !lookaside.retain(lkey: lkey, count: count) else { return }
        state.withLock { $0.retain(lkey: lkey, count: count) }
    }

    /// Gives back `count` references on the region with `lkey`, as `count` calls of
    /// ``release(lkey:)`` would, in one atomic step when no lock is needed.
    public func release(lkey: UInt32, count: Int) {
        precondition(count >= 0, "cannot release \(count) references")
        guard count > 0 else { return }
        let release = lookaside.release(lkey: lkey, count: count)
        if case .released = release { return }
        deregister(state.withLock { $0.finish(release, lkey: lkey, count: count) })
    }
}
