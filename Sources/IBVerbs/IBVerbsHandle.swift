#if RDMA
/// A pointer to a libibverbs object, as the owner's lock holds it.
///
/// libibverbs objects may be used from any thread; what must not race is destroying
/// one while it is used, and every owner serializes that behind its lock.
import Verbs
struct IBVerbsHandle<Object>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Object>

    init(_ pointer: UnsafeMutablePointer<Object>) { self.pointer = pointer }
}
#endif
