import IterExtract
import Locking
import TestKit
import Testing

/// Records every announcement it hears (other tests' pools announce too, so the
/// tests look for their own ranges among them).
private final class RecordingObserver: UnmapObserver {
    let heard = LockedValue<[Range<UInt>]>([])
    func addressesWillUnmap(_ addresses: Range<UInt>) { heard.withLock { $0.append(addresses) } }
    func didHear(_ range: Range<UInt>) -> Bool { heard.withLock { $0.contains(range) } }
}

@Suite("Unmap notifications")
struct UnmapNotificationsTests {
    @Test("a page pool announces its whole range before it unmaps it")
    func pagePool() throws {
        let observer = RecordingObserver()
        UnmapNotifications.addObserver(observer)
        defer { UnmapNotifications.removeObserver(observer) }
        var pool: PagePool? = try PagePool(pageCount: 8)
        let range = pool!.addressRange
        #expect(!observer.didHear(range))
        pool = nil
        #expect(observer.didHear(range))
    }

    @Test("a virtual mapping announces its view, and the pool behind it announces later")
    func virtualMapping() throws {
        let observer = RecordingObserver()
        UnmapNotifications.addObserver(observer)
        defer { UnmapNotifications.removeObserver(observer) }
        let pool = try PagePool(pageCount: 8)
        var mapping: VirtualMapping? = try VirtualMapping(pages: try pool.allocatePages(count: 4, arrangement: .swappedHalves), of: pool)
        let start = UInt(bitPattern: mapping!.baseAddress)
        let view = start..<start + UInt(4 * pageSize)
        mapping = nil
        #expect(observer.didHear(view))
        #expect(!observer.didHear(pool.addressRange), "the pool is still alive")
    }

    @Test("a removed observer hears nothing, and a released one is dropped")
    func removal() throws {
        let removed = RecordingObserver()
        UnmapNotifications.addObserver(removed)
        UnmapNotifications.removeObserver(removed)
        var released: RecordingObserver? = RecordingObserver()
        weak let weakReleased = released
        UnmapNotifications.addObserver(released!)
        released = nil
        #expect(weakReleased == nil, "the notifications hold observers weakly")
        var pool: PagePool? = try PagePool(pageCount: 1)
        let range = pool!.addressRange
        pool = nil
        #expect(!removed.didHear(range))
    }
}

/// An observer that removes itself when it goes, as an MR cache does.
private final class SelfRemovingObserver: UnmapObserver {
    func addressesWillUnmap(_ addresses: Range<UInt>) {}
    deinit { UnmapNotifications.removeObserver(self) }
}

@Suite("Unmap notifications under concurrency")
struct UnmapNotificationsConcurrencyTests {
    @Test("observers that remove themselves in deinit while others are added and memory is announced never deadlock")
    func selfRemovingObservers() {
        // A thread that adds an observer or announces holds the last reference to an
        // observer whose owner just let go; its deinit must not run under the lock.
        let threads = (0..<4).map { index in
            JoinableThread {
                for round in 0..<50_000 {
                    if index == 0 {
                        UnmapNotifications.announce(UInt(round)..<UInt(round) + 1)
                    } else {
                        UnmapNotifications.addObserver(SelfRemovingObserver())
                    }
                }
            }
        }
        for thread in threads { thread.join() }
    }
}
