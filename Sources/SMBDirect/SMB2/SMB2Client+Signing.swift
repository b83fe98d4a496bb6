import IterExtract
import RDMASGE
import ScatterList

// What happens to each message on its way out and in: the 3.1.1 preauthentication
// integrity hash and, once the session signs, signatures (MS-SMB2 3.2.4.1.1, 3.2.5.1.3).
extension SMB2Client {
    /// Readies `message` (header and body) to be sent with the bytes of `payload` after
    /// it: adds a NEGOTIATE or SESSION_SETUP request to the preauthentication integrity
    /// hash, and, when the session signs, signs the message and the payload. The payload
    /// is described in ``signingTable`` (pinning user pages only while the signature is
    /// computed) and streamed through the MAC where it lies: it is not copied.
    ///
    /// - Throws: ``SMB2Error/extraction(_:)`` when the payload's pages cannot be pinned;
    ///   nothing was changed then.
    func seal(_ message: inout [UInt8], _ command: SMB2Command, payload: IOIterator) throws(SMB2Error) {
        switch command {
        case .negotiate: preauth?.add(message)
        case .sessionSetup: sessionPreauth?.add(message)
        default: break
        }
        guard let signer else { return }
        guard payload.count > 0 else { return signer.sign(&message) }
        var data = payload
        let table = signingTable
        let described: Int
        do {
            described = try data.extract(maxSize: data.count, into: table, maxEntries: .max, ledger: ledger)
        } catch {
            throw .extraction(error)
        }
        defer {
            table.releasePins(ledger: ledger)
            table.removeAll()
        }
        // An inline WRITE's data ends where an XARRAY's hole does (see `contiguous(_:upTo:)`).
        precondition(described == payload.count, "a signed payload is described whole")
        signer.sign(&message, payload: table)
    }

    /// Checks the signature of the response `reply` (its header `header`) when the session
    /// signs: every response is signed but an interim `STATUS_PENDING` one, which MS-SMB2
    /// lets the server send unsigned (and which is checked if it is signed).
    ///
    /// - Throws: ``SMB2Error/badSignature(command:messageID:)``, which ends the session.
    func checkSignature(of reply: [UInt8], _ header: SMB2Header) throws(SMB2Error) {
        guard let signer, header.isSigned || header.status != .pending else { return }
        guard header.isSigned, signer.verify(reply) else {
            throw .badSignature(command: header.command, messageID: header.messageID)
        }
    }
}
