#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IterExtract
import RDMASGE

// The file commands: CREATE, WRITE and READ on the files of the server's directory,
// WRITE and READ inline or through the RDMA channel (MS-SMB2 3.3.5.9, 3.3.5.13, 3.3.5.12).
extension SMB2Server {
    func create(_ request: SMB2CreateRequest, body: inout SMB2MessageWriter) -> NTStatus {
        let parts = request.name.split(separator: "\\", omittingEmptySubsequences: true)
        guard !parts.isEmpty, !parts.contains(where: { $0 == ".." || $0 == "." || $0.contains("/") || $0.contains("\0") }) else {
            return .objectNameInvalid
        }
        guard openFiles.count < maxOpenFiles else { return .tooManyOpenedFiles }
        let path = root + "/" + parts.joined(separator: "/")
        let opensExisting = request.createDisposition == SMB2CreateRequest.open
        let existed = access(path, F_OK) == 0
        let descriptor = opensExisting ? open(path, O_RDONLY) : open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else {
            return errno != ENOENT ? .accessDenied : opensExisting && access(root, F_OK) == 0 ? .objectNameNotFound : .objectPathNotFound
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            close(descriptor)
            return .accessDenied
        }
        let fileID = SMB2FileID(persistent: nextFileID, volatile: nextFileID)
        openFiles[nextFileID] = descriptor
        nextFileID += 1
        let action = opensExisting ? SMB2CreateResponse.opened : existed ? SMB2CreateResponse.overwritten : SMB2CreateResponse.created
        SMB2CreateResponse(createAction: action, fileID: fileID, endOfFile: UInt64(status.st_size)).encode(into: &body)
        return .success
    }

    func write(_ request: SMB2WriteRequest, _ message: [UInt8], body: inout SMB2MessageWriter) throws(SMB2Error) -> NTStatus {
        guard let descriptor = openFiles[request.fileID.volatile] else { return .fileClosed }
        // A file offset is signed: a range past its largest value is no file's.
        guard let offset = off_t(exactly: request.offset), let length = off_t(exactly: request.length),
              length <= off_t.max - offset
        else { return .invalidParameter }
        let written: Int
        if request.descriptors.isEmpty {
            written = message.withUnsafeBytes { bytes in
                pwrite(descriptor, bytes.baseAddress! + request.inlineData.lowerBound, request.length, offset)
            }
        } else {
            do {
                try connection.read(from: request.descriptors, into: staging, lkey: stagingRegion.lkey)
            } catch {
                throw .transport(error)
            }
            statistics.rdmaReadBytes += request.length
            written = pwrite(descriptor, staging.baseAddress!, request.length, offset)
        }
        guard written == request.length else { return .diskFull }
        statistics.bytesWritten += written
        SMB2WriteResponse(count: written).encode(into: &body)
        return .success
    }

    /// Reads what `request` asks from its file into the staging buffer and returns it
    /// inline or pushes it by RDMA WRITE into the client's buffers, the first bytes
    /// first, as many descriptors as the bytes read fill. At or past the end of the
    /// file the answer is `STATUS_END_OF_FILE`.
    func read(_ request: SMB2ReadRequest, body: inout SMB2MessageWriter) throws(SMB2Error) -> NTStatus {
        guard let descriptor = openFiles[request.fileID.volatile] else { return .fileClosed }
        guard let offset = off_t(exactly: request.offset), off_t(request.length) <= off_t.max - offset else {
            return .invalidParameter
        }
        let count = pread(descriptor, staging.baseAddress!, request.length, offset)
        guard count >= 0 else { return .accessDenied }
        guard count > 0 || request.length == 0 else { return .endOfFile }
        let data = UnsafeRawBufferPointer(rebasing: staging[..<count])
        if request.descriptors.isEmpty {
            SMB2ReadResponse(dataLength: count, dataRemaining: 0).encode(into: &body)
            body.append(data)
        } else {
            var filled: [BufferDescriptorV1] = []
            var left = count
            for var target in request.descriptors where left > 0 {
                target.length = UInt32(min(Int(target.length), left))
                left -= Int(target.length)
                filled.append(target)
            }
            do {
                try connection.write(data, lkey: stagingRegion.lkey, to: filled)
            } catch {
                throw .transport(error)
            }
            statistics.rdmaWriteBytes += count
            SMB2ReadResponse(dataLength: 0, dataRemaining: count).encode(into: &body)
        }
        statistics.bytesRead += count
        return .success
    }
}
