#if RDMA
import Glibc
import Synchronization

/// A check that could not be made: the scenario stops and the check fails.
struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Counts PASS and FAIL lines and prints the closing `N passed, N failed` the harness
/// reads. Checks may come from several threads: each line is printed whole.
final class Report: Sendable {
    private let counts = Mutex((passed: 0, failed: 0))

    /// Prints one line and flushes: stdout is a pipe in the guest.
    static func say(_ line: String) {
        print(line)
        fflush(nil)
    }

    /// Counts and prints one check; returns `ok`.
    @discardableResult
    func check(_ ok: Bool, _ what: String) -> Bool {
        counts.withLock { counts in
            if ok { counts.passed += 1 } else { counts.failed += 1 }
            Report.say("\(ok ? "PASS" : "FAIL"): \(what)")
        }
        return ok
    }

    /// Runs `body`; a thrown error is one failed check named `what`.
    func attempt(_ what: String, _ body: () throws -> Void) {
        do { try body() } catch { check(false, "\(what): \(error)") }
    }

    func finish() -> Never {
        let (passed, failed) = counts.withLock { ($0.passed, $0.failed) }
        Report.say("\(passed) passed, \(failed) failed")
        exit(failed == 0 ? 0 : 1)
    }
}

/// `value` as 8 hex digits.
func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
}

/// Seconds on the monotonic clock.
func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}
#endif
