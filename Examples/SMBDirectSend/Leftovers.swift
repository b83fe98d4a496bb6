import SMBDirect

/// What a run left behind once its last response arrived: pinned pages in the client's
/// ledger and regions the server could still reach. Both are 0 after every run
/// that ends well; the report prints them so that a user (and the ksmbd suite) can see it.
public struct Leftovers: Hashable, Sendable {
    /// Pages the client's ledger still counts as pinned.
    public var pinnedPages: Int
    /// Regions still registered for the server's RDMA READ or WRITE.
    public var registeredRegions: Int

    /// What `client` holds now.
    public init<Domain>(of client: SMB2Client<Domain>) {
        pinnedPages = client.ledger.pinnedPageCount
        registeredRegions = client.connection.peerReadableRegistrations.regionCount
            + client.connection.peerWritableRegistrations.regionCount
    }

    /// The report's line.
    public var line: String { "left behind:  \(pinnedPages) pinned pages, \(registeredRegions) registered regions" }
}
