#if os(Linux)
import Glibc

/// A relay loop's spare blocks, of 16 KiB and of 64 KiB: a queue that
/// empties gives its block back, and the next one to fill takes it, so that
/// a keep-alive request allocates no memory for its bytes and an idle
/// connection holds none.
final class BlockPool {
    static let blockSize = 16 * 1024
    /// For a socket that filled the last block it was read into.
    static let largeBlockSize = 64 * 1024
    /// Spare blocks kept beyond this many are freed: 1 MiB of small ones
    /// and 256 KiB of large ones.
    static let keep = 64
    static let keepLarge = 4
    @exclusivity(unchecked) private var spare: [UnsafeMutableRawBufferPointer] = []
    @exclusivity(unchecked) private var spareLarge: [UnsafeMutableRawBufferPointer] = []

    func take(atLeast size: Int) -> UnsafeMutableRawBufferPointer {
        if size <= Self.blockSize {
            if let block = spare.popLast() { return block }
            return .allocate(byteCount: Self.blockSize, alignment: 16)
        }
        if size <= Self.largeBlockSize {
            if let block = spareLarge.popLast() { return block }
            return .allocate(byteCount: Self.largeBlockSize, alignment: 16)
        }
        return .allocate(byteCount: size, alignment: 16)
    }

    func give(_ block: UnsafeMutableRawBufferPointer) {
        if block.count == Self.blockSize && spare.count < Self.keep {
            spare.append(block)
        } else if block.count == Self.largeBlockSize && spareLarge.count < Self.keepLarge {
            spareLarge.append(block)
        } else {
            block.deallocate()
        }
    }

    func freeAll() {
        for block in spare { block.deallocate() }
        for block in spareLarge { block.deallocate() }
        spare = []
        spareLarge = []
    }
}

/// Bytes on their way through a relay connection: read from one socket,
/// not yet handled or written to the other. `bytes` are the ones waiting.
/// The block returns to the pool whenever the queue empties.
final class ByteQueue {
    private unowned(unsafe) let pool: BlockPool
    // Unchecked for overlapping access at run time: see `SpliceLoop.reports`.
    @exclusivity(unchecked) private var block: UnsafeMutableRawBufferPointer?
    @exclusivity(unchecked) private var start = 0
    @exclusivity(unchecked) private var end = 0

    init(pool: BlockPool) {
        self.pool = pool
    }

    deinit {
        if let block { pool.give(block) }
    }

    var count: Int { end - start }
    var isEmpty: Bool { start == end }

    /// The waiting bytes; valid until the queue next changes.
    var bytes: UnsafeRawBufferPointer {
        guard let block else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(rebasing: block[start..<end])
    }

    /// Makes room for `room` more bytes after the waiting ones.
    private func reserve(_ room: Int) {
        guard let current = block else {
            block = pool.take(atLeast: room)
            return
        }
        if current.count - end >= room { return }
        if current.count - count >= room {
            // Enough room once the waiting bytes move to the front.
            if count > 0 { memmove(current.baseAddress!, current.baseAddress! + start, count) }
            end = count
            start = 0
            return
        }
        let larger = pool.take(atLeast: max(current.count * 2, count + room))
        if count > 0 { memcpy(larger.baseAddress!, current.baseAddress! + start, count) }
        end = count
        start = 0
        pool.give(current)
        block = larger
    }

    func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        reserve(bytes.count)
        memcpy(block!.baseAddress! + end, bytes.baseAddress!, bytes.count)
        end += bytes.count
    }

    func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Moves the first `n` waiting bytes to the end of `other` (from the
    /// same pool). When they are all of them and `other` is empty, the
    /// block itself changes hands and nothing is copied: a body read from
    /// one socket goes to the other's queue as it came. Copying it was a
    /// tenth of the relay's CPU on 64 KiB answers.
    func move(_ n: Int, to other: ByteQueue) {
        assert(pool === other.pool && n <= count)
        guard n > 0 else { return }
        if n == count && other.isEmpty {
            if let stale = other.block { pool.give(stale) }
            other.block = block
            other.start = start
            other.end = end
            block = nil
            start = 0
            end = 0
            return
        }
        other.append(UnsafeRawBufferPointer(rebasing: block![start..<(start + n)]))
        consume(n)
    }

    /// Drops the first `n` waiting bytes.
    func consume(_ n: Int) {
        start += n
        if start >= end { clear() }
    }

    func clear() {
        start = 0
        end = 0
        if let block {
            pool.give(block)
            self.block = nil
        }
    }

    /// The last read took less than it asked for: the socket had no more
    /// (edge-triggered epoll says when more comes, so no read is spent
    /// finding EAGAIN, as nginx does).
    private(set) var drained = false
    /// The last read filled all the room it had: the socket may hold a
    /// lot more (a large body), so the next read gets a large block. A
    /// 64 KiB answer took five reads from the backend and five writes to
    /// the client in 16 KiB blocks, and now takes two of each.
    @exclusivity(unchecked) private var filled = false

    /// Reads what `fd` has, up to `limit` bytes waiting in all (the caller
    /// reads only below it): read(2)'s result (errno set when -1).
    func read(from fd: Int32, limit: Int) -> Int {
        read(limit: limit) { Glibc.read(fd, $0, $1) }
    }

    /// Reads through `receive` (read(2)'s contract: room and its size in,
    /// the bytes it filled out), up to `limit` bytes waiting in all.
    @inline(__always)
    func read(limit: Int, _ receive: (UnsafeMutableRawPointer, Int) -> Int) -> Int {
        let room = limit - count
        guard room > 0 else {
            errno = EAGAIN
            return -1
        }
        // At least 4 KiB free (or what the limit leaves), more if the block
        // has it; a large block's worth after a read that filled its room.
        reserve(min(room, filled ? BlockPool.largeBlockSize : 4096))
        let free = min(block!.count - end, room)
        let n = receive(block!.baseAddress! + end, free)
        drained = n >= 0 && n < free
        filled = n == free
        if n > 0 {
            end += n
        } else if isEmpty {
            clear()
        }
        return n
    }

    /// Writes the waiting bytes to `fd`: write(2)'s result (errno set when -1).
    func write(to fd: Int32) -> Int {
        write { Glibc.write(fd, $0, $1) }
    }

    /// Writes the waiting bytes through `send` (write(2)'s contract).
    @inline(__always)
    func write(_ send: (UnsafeRawPointer, Int) -> Int) -> Int {
        guard let block, count > 0 else { return 0 }
        let n = send(block.baseAddress! + start, count)
        if n > 0 { consume(n) }
        return n
    }
}
#endif
