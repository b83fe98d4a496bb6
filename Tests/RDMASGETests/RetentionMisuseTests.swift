import IterExtract
import RDMASGE
import Testing
import SoftVerbs

/// Releasing what was not taken, or releasing twice, is a programmer error that traps.
@Suite("Retention misuse traps")
struct RetentionMisuseTests {
    @Test("a plan released twice traps")
    func planReleasedTwice() async {
        await #expect(processExitsWith: .failure) {
            let plan = WorkRequestPlan(requestCapacity: 1, limits: .init(maxSGEs: 1, maxMessageSize: 16))
            var bytes = [UInt8](repeating: 1, count: 16)
            bytes.withUnsafeMutableBytes { buffer in
                var iterator = IOIterator(source: UnsafeRawBufferPointer(buffer))
                let keys = SingleKeyResolver(lkey: 1, coverage: 0..<UInt.max, access: .all)
                _ = try? plan.build(from: &iterator, operation: .send, keys: keys, ledger: PinLedger(mode: .exact))
            }
            plan.release()
            plan.release()
        }
    }

    @Test("an MR-cache reference released twice traps")
    func cacheReleasedTwice() async {
        await #expect(processExitsWith: .failure) {
            let (cache, lkey, memory) = cacheWithRetainedLookup()
            cache.release(lkey: lkey)
            cache.release(lkey: lkey)
            withExtendedLifetime(memory) {}
        }
    }
}
