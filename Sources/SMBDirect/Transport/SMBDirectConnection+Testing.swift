// A hook for the package's tests: `package` access, so that tests exercise the real
// build instead of an `@testable` one.
extension SMBDirectConnection {
    /// The work requests posted and not completed yet: sends, receives and RDMA
    /// operations. Tests check that a connection that ended accounts for every one.
    package var workRequestsInFlightForTesting: (sends: Int, receives: Int, rdma: Int) {
        (sendsInFlight, receivesInFlight, rdmaInFlight)
    }
}
