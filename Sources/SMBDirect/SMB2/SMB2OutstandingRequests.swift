import IterExtract

/// The requests a client has sent and not seen the final response to, by MessageId
/// (MS-SMB2 3.2.1.7 `Connection.OutstandingRequests`), in a table of fixed capacity:
/// the client's depth bounds it, whatever the server does, and nothing is allocated
/// per request.
///
/// Each entry owns what its request lent the server, the registration of an
/// RDMA-channel WRITE or READ, until the client takes the entry out at the final response:
/// an interim `STATUS_PENDING` response only marks the entry, since the server may
/// still be reading the memory.
struct SMB2OutstandingRequests: ~Copyable {
    /// One request in flight.
    struct Request: ~Copyable {
        /// The request's first message id, which its responses carry.
        let messageID: UInt64
        let command: SMB2Command
        /// The credits the request asked for in its header (CreditRequest).
        let creditsAsked: Int
        /// A WRITE's or READ's file offset.
        let offset: UInt64
        /// A WRITE's or READ's bytes; 0 for other commands.
        let length: Int
        /// The memory an RDMA-channel WRITE or READ exposes to the server, released at the final response.
        var registration: SMBDirectRegistration?
        /// Where an inline READ's data goes: the destination at the request's position, `length` bytes long.
        var inlineDestination: IOIterator?
        /// The AsyncId of the interim response, once one arrived.
        var asyncID: UInt64?
        /// Whether a response (interim or final) has granted credits for the request.
        var creditsAnswered = false
    }

    /// The most requests in flight.
    let capacity: Int
    /// The requests in flight.
    private(set) var count = 0
    /// The credits the requests in flight asked for and no response has granted yet.
    private(set) var creditsAwaited = 0
    private let slots: UnsafeMutablePointer<Request?>

    /// An empty table for at most `capacity` (positive) requests.
    init(capacity: Int) {
        precondition(capacity > 0, "at least one request may be in flight")
        self.capacity = capacity
        slots = .allocate(capacity: capacity)
        for index in 0..<capacity { (slots + index).initialize(to: nil) }
    }

    deinit {
        precondition(count == 0, "\(count) SMB2 requests still in flight: their registrations would leak")
        slots.deinitialize(count: capacity)
        slots.deallocate()
    }

    var isEmpty: Bool { count == 0 }
    var isFull: Bool { count == capacity }

    /// Keeps `request` until its final response.
    ///
    /// - Precondition: The table is not full and no request in it has the same message id.
    mutating func insert(_ request: consuming Request) {
        precondition(!isFull, "\(capacity) SMB2 requests are in flight already")
        precondition(index(of: request.messageID) == nil, "message id \(request.messageID) is in flight already")
        let free = (0..<capacity).first { slots[$0] == nil }!
        creditsAwaited += request.creditsAsked
        slots[free] = consume request
        count += 1
    }

    /// The slot of the request with `messageID`, if it is in flight.
    func index(of messageID: UInt64) -> Int? {
        (0..<capacity).first { slots[$0]?.messageID == messageID }
    }

    /// Whether a request sent before the one with `messageID` is in flight.
    func hasOlder(than messageID: UInt64) -> Bool {
        (0..<capacity).contains { (slots[$0]?.messageID ?? .max) < messageID }
    }

    /// The command of the request in slot `index`.
    func command(at index: Int) -> SMB2Command { (slots[index]?.command)! }

    /// The bytes of the request in slot `index`.
    func length(at index: Int) -> Int { (slots[index]?.length)! }

    /// Whether the request in slot `index` holds a registration.
    func isRegistered(at index: Int) -> Bool { slots[index]?.registration?.byteCount != nil }

    /// The AsyncId an interim response gave the request in slot `index`, if one did.
    func asyncID(at index: Int) -> UInt64? { slots[index]?.asyncID ?? nil }

    /// Records that a response granted credits for the request in slot `index` (only the first counts).
    mutating func answerCredits(at index: Int) {
        guard slots[index]?.creditsAnswered == false else { return }
        slots[index]?.creditsAnswered = true
        creditsAwaited -= (slots[index]?.creditsAsked)!
    }

    /// Marks the request in slot `index` as going on asynchronously under `asyncID`.
    mutating func markPending(at index: Int, asyncID: UInt64) {
        slots[index]?.asyncID = asyncID
    }

    /// Takes the request in slot `index` out of the table.
    mutating func remove(at index: Int) -> Request {
        // Moved out and the slot refilled, not `take()` through the subscript: the
        // thread sanitizer's instrumentation of that access breaks the 6.3 compiler.
        let request = (slots + index).move()!
        (slots + index).initialize(to: nil)
        if !request.creditsAnswered { creditsAwaited -= request.creditsAsked }
        count -= 1
        return request
    }

    /// Takes any request out of the table, or returns `nil` when it is empty.
    mutating func removeAny() -> Request? {
        guard let index = (0..<capacity).first(where: { slots[$0] != nil }) else { return nil }
        return remove(at: index)
    }
}
