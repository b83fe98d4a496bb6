#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A saved position of an ``IOIterator``, restored by ``IOIterator/restore(_:)``.
/// The kernel's `struct iov_iter_state`.
public struct IOIteratorState {
    let count: Int
    let offset: Int
    let segments: UnsafeRawPointer?
    let segmentCount: Int
    let object: AnyObject?
    let slot: Int
}

extension IOIterator {
    /// Moves the position forward by `n` bytes, clamped to ``count``, and returns the
    /// bytes it moved.
    ///
    /// Segment kinds drop fully consumed segments, so the segment count reaches zero
    /// when the last segment is consumed. FOLIOQ moves slot by slot, over any empty
    /// segments, and leaves a finished folio with its offset reset to 0. A PIPE
    /// iterator appends `n` bytes of zeros to the pipe (the space a producer filled);
    /// when the pipe's pool runs out of pages it stops there, as ``zero(_:)`` does,
    /// and returns fewer bytes. Every other kind moves by all `n` bytes that
    /// ``count`` allows. Mirrors the kernel's `iov_iter_advance`.
    @discardableResult
    public mutating func advance(_ n: Int) -> Int {
        precondition(n >= 0, "advance(_:) takes a non-negative byte count")
        let n = min(n, count)
        switch kind {
        case .ubuf, .xarray:
            offset += n
        case .iovec, .kvec:
            advanceSegments(n, stride: MemoryLayout<iovec>.stride) { $0.assumingMemoryBound(to: iovec.self).pointee.iov_len }
        case .bvec:
            advanceSegments(n, stride: MemoryLayout<BioVec>.stride) { $0.assumingMemoryBound(to: BioVec.self).pointee.length }
        case .folioq:
            advanceFolioQueue(n)
        case .pipe:
            return appendToPipe(n) { region in region.initializeMemory(as: UInt8.self, repeating: 0) }
        case .discard:
            break
        }
        count -= n
        return n
    }

    @inline(__always)
    private mutating func advanceSegments(_ n: Int, stride: Int, length: (UnsafeRawPointer) -> Int) {
        var remaining = n + offset
        var current = segments
        var left = segmentCount
        while left > 0 {
            let segmentLength = length(current!)
            if remaining < segmentLength { break }
            remaining -= segmentLength
            current = current! + stride
            left -= 1
        }
        offset = remaining
        segments = current
        segmentCount = left
    }

    /// Moves `n` bytes on through the chain, folio by folio and over any number of
    /// empty segments, so that the offset always lies inside the current folio (or,
    /// at the end of the chain, past its last one). Also settles a position made with
    /// an offset that runs past its folio.
    mutating func advanceFolioQueue(_ n: Int) {
        var remaining = n
        var segment = folioQueue
        while true {
            if slot >= segment.slotCount {
                guard let next = segment.next else { break }
                segment = next
                slot = 0
                continue
            }
            let rest = segment[slot].size - offset
            if remaining < rest { break }
            remaining -= rest
            offset = 0
            slot += 1
        }
        offset += remaining
        object = segment
    }

    /// Moves the position back by `n` bytes.
    ///
    /// Reverting past where the iterator started is a programmer error and traps,
    /// as it would stray into memory that was not pinned (the kernel BUGs).
    /// Mirrors the kernel's `iov_iter_revert`.
    public mutating func revert(_ n: Int) {
        precondition(n >= 0, "revert(_:) takes a non-negative byte count")
        precondition(n <= maxReadWriteCount, "revert(_:) of \(n) bytes exceeds maxReadWriteCount")
        if n == 0 { return }
        switch kind {
        case .discard:
            break
        case .ubuf, .xarray:
            precondition(n <= offset, "revert(\(n)) goes past the start of the \(kind) iterator")
            offset -= n
        case .iovec, .kvec:
            revertSegments(n, stride: MemoryLayout<iovec>.stride) { $0.assumingMemoryBound(to: iovec.self).pointee.iov_len }
        case .bvec:
            revertSegments(n, stride: MemoryLayout<BioVec>.stride) { $0.assumingMemoryBound(to: BioVec.self).pointee.length }
        case .folioq:
            revertFolioQueue(n)
        case .pipe:
            revertPipe(n)
        }
        count += n
    }

    @inline(__always)
    private mutating func revertSegments(_ n: Int, stride: Int, length: (UnsafeRawPointer) -> Int) {
        if n <= offset {
            offset -= n
            return
        }
        var remaining = n - offset
        var current = segments!
        var left = segmentCount
        while true {
            precondition(current > firstSegment!, "revert(\(n)) goes past the start of the \(kind) iterator")
            current -= stride
            left += 1
            let segmentLength = length(current)
            if remaining <= segmentLength {
                offset = segmentLength - remaining
                break
            }
            remaining -= segmentLength
        }
        segments = current
        segmentCount = left
    }

    private mutating func revertFolioQueue(_ n: Int) {
        if n <= offset {
            offset -= n
            return
        }
        var remaining = n - offset
        var segment = folioQueue
        while true {
            if slot == 0 {
                guard let previous = segment.previous else {
                    preconditionFailure("revert(\(n)) goes past the start of the FOLIOQ chain")
                }
                segment = previous
                slot = segment.slotCount
                continue
            }
            slot -= 1
            let size = segment[slot].size
            if remaining <= size {
                offset = size - remaining
                break
            }
            remaining -= size
        }
        object = segment
    }

    /// Shortens the iterator to at most `n` bytes. Mirrors the kernel's `iov_iter_truncate`.
    public mutating func truncate(_ n: Int) {
        precondition(n >= 0, "truncate(_:) takes a non-negative byte count")
        if count > n { count = n }
    }

    /// Sets the count back to `n` after a ``truncate(_:)``; `n` must not exceed the
    /// bytes that remain in the underlying memory. Mirrors the kernel's `iov_iter_reexpand`.
    public mutating func reexpand(_ n: Int) {
        precondition(n >= 0, "reexpand(_:) takes a non-negative byte count")
        count = n
    }

    /// The current position, for ``restore(_:)``. Mirrors the kernel's `iov_iter_save_state`.
    public var state: IOIteratorState {
        IOIteratorState(count: count, offset: offset, segments: segments, segmentCount: segmentCount,
                        object: object, slot: slot)
    }

    /// Returns to a position saved from this iterator by ``state``.
    /// For a PIPE iterator this drops what was appended since. Mirrors `iov_iter_restore`.
    public mutating func restore(_ saved: IOIteratorState) {
        if kind == .pipe {
            precondition(saved.count >= count, "restore(_:) of a PIPE iterator can only go back")
            revert(saved.count - count)
            return
        }
        count = saved.count
        offset = saved.offset
        segments = saved.segments
        segmentCount = saved.segmentCount
        object = saved.object
        slot = saved.slot
    }
}
