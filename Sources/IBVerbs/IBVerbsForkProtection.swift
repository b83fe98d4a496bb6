#if RDMA
import CVerbs
import Verbs

extension IBVerbs {
    /// How registered memory survives `fork()` (`enum ibv_fork_status`).
    ///
    /// A registered page is pinned: the device keeps writing to and reading from
    /// that physical page. If `fork()` made it copy-on-write, the parent's next write
    /// would move the parent to a fresh copy while the device kept using the old
    /// page, and RDMA READ data would land where the parent no longer looks. Linux
    /// copies pinned pages for the child at fork time instead (since 5.9; the kernel
    /// says so to libibverbs from 5.13 on), so the parent keeps the pinned page and
    /// the child gets its own copy: that is ``unneeded``. On older kernels ``enableForkProtection()`` makes libibverbs mark
    /// every registered range `MADV_DONTFORK` (the child then has no such memory).
    public enum ForkProtection: UInt32, Sendable, CustomStringConvertible {
        /// `IBV_FORK_DISABLED`: neither the kernel nor libibverbs protects registered memory.
        case disabled = 0
        /// `IBV_FORK_ENABLED`: libibverbs marks registered ranges `MADV_DONTFORK`.
        case enabled = 1
        /// `IBV_FORK_UNNEEDED`: the kernel copies pinned pages for the child at fork.
        case unneeded = 2

        /// The status in words, with what protects registered memory.
        public var description: String {
            switch self {
            case .disabled: "disabled"
            case .enabled: "enabled (MADV_DONTFORK on registered ranges)"
            case .unneeded: "unneeded (the kernel copies pinned pages for the child)"
            }
        }
    }

    /// What protects registered memory across `fork()` in this process. The
    /// corresponding C function is `ibv_is_fork_initialized`.
    public static var forkProtection: ForkProtection { IBVerbsCalls.forkStatus() }

    /// Asks libibverbs to protect registered memory across `fork()`; does nothing
    /// when the kernel already does (``ForkProtection/unneeded``). Call it before any
    /// device is opened. The corresponding C function is `ibv_fork_init`.
    @discardableResult
    public static func enableForkProtection() throws(VerbsError) -> ForkProtection {
        try IBVerbsCalls.forkInit()
        return forkProtection
    }
}
#endif
