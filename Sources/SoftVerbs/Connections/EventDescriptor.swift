#if canImport(Glibc)
import Glibc
#endif
import CEventPoll
import Verbs

/// A non-blocking, close-on-exec `eventfd(2)`.
/// - Throws: `call` with `eventfd`'s errno (`EMFILE`, `ENFILE`, `ENOMEM`).
func makeEventDescriptor(for call: VerbsCall) throws(VerbsError) -> Int32 {
    let descriptor = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
    guard descriptor >= 0 else { throw VerbsError(call, errno: errno, "eventfd(2) failed") }
    return descriptor
}
