import Locking

/// Something that remembers facts about addresses (an MR cache remembers which
/// registration covers them) and must forget them before the memory there goes away.
///
/// Register with ``UnmapNotifications/addObserver(_:)``. The library announces the
/// memory it owns itself (``PagePool``, ``VirtualMapping``) before unmapping it, so an
/// observer stays right even where no memory monitor can see the unmapping.
public protocol UnmapObserver: AnyObject, Sendable {
    /// The addresses in `addresses` are about to be unmapped: forget what was known
    /// about them. Called on the unmapping thread, before the memory goes; must not
    /// add or remove observers.
    func addressesWillUnmap(_ addresses: Range<UInt>)
}

/// Where the library announces, before it unmaps memory it owns, which addresses are
/// going away.
///
/// Observers are held weakly: one that is released without being removed is dropped
/// at the next announcement or registration. Announcements call each observer outside
/// the notifications' lock, so an observer may take its own locks.
public enum UnmapNotifications {
    private struct WeakObserver: @unchecked Sendable {
        weak var observer: (any UnmapObserver)?
    }

    private static let observers = LockedValue<[ObjectIdentifier: WeakObserver]>([:])

    /// Starts telling `observer` about memory the library unmaps.
    public static func addObserver(_ observer: some UnmapObserver) {
        let alive = observers.withLock { table in
            let alive = prune(&table)
            table[ObjectIdentifier(observer)] = WeakObserver(observer: observer)
            return alive
        }
        _ = alive
    }

    /// Stops telling `observer`; removing an observer that was never added does nothing.
    public static func removeObserver(_ observer: some UnmapObserver) {
        observers.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(observer)) }
    }

    /// Tells every observer that `addresses` are about to be unmapped.
    package static func announce(_ addresses: Range<UInt>) {
        let alive = observers.withLock { prune(&$0) }
        for observer in alive { observer.addressesWillUnmap(addresses) }
    }

    /// Drops the entries of released observers and returns the others, held strongly.
    ///
    /// The caller lets go of them only after the lock: the last reference to an observer
    /// may be one of these (its owner let go meanwhile), and its `deinit` removes it,
    /// which takes the lock.
    private static func prune(_ table: inout [ObjectIdentifier: WeakObserver]) -> [any UnmapObserver] {
        var alive: [any UnmapObserver] = []
        alive.reserveCapacity(table.count)
        for (key, entry) in table {
            if let observer = entry.observer { alive.append(observer) } else { table[key] = nil }
        }
        return alive
    }
}
