#if os(Linux)
import Glibc
import PropertyBased
@testable import ShuttleRuntime
import Testing

@Suite("The relay's byte queues and block pool")
struct ByteQueueTests {
    /// Reads through `queue` from a source that has `waiting` bytes,
    /// numbered from `next`; returns the room each read was offered.
    static func read(_ queue: ByteQueue, waiting: inout Int, next: inout UInt8, limit: Int = 256 * 1024) -> Int {
        var offered = 0
        _ = queue.read(limit: limit) { pointer, room in
            offered = room
            guard waiting > 0 else {
                errno = EAGAIN
                return -1
            }
            let n = min(room, waiting)
            for i in 0..<n {
                pointer.storeBytes(of: next, toByteOffset: i, as: UInt8.self)
                next &+= 1
            }
            waiting -= n
            return n
        }
        return offered
    }

    @Test("a read that fills its room is followed by one into a 64 KiB block; a short one goes back to 16 KiB")
    func largeBlocksAfterAFullRead() {
        let pool = BlockPool()
        defer { withExtendedLifetime(pool) {} }  // the queue holds it unowned
        let queue = ByteQueue(pool: pool)
        var waiting = 100 * 1024
        var next: UInt8 = 0
        // A fresh queue reads into a small block, which the large body fills.
        #expect(Self.read(queue, waiting: &waiting, next: &next) == BlockPool.blockSize)
        #expect(!queue.drained)
        queue.consume(queue.count)
        #expect(Self.read(queue, waiting: &waiting, next: &next) == BlockPool.largeBlockSize)
        queue.consume(queue.count)
        // 100 KiB - 16 KiB - 64 KiB = 20 KiB left: a short read, the socket drained.
        #expect(Self.read(queue, waiting: &waiting, next: &next) == BlockPool.largeBlockSize)
        #expect(queue.drained)
        queue.consume(queue.count)
        // A small answer after it: back to a small block.
        waiting = 300
        #expect(Self.read(queue, waiting: &waiting, next: &next) == BlockPool.blockSize)
        #expect(queue.count == 300)
    }

    @Test("the large block respects the limit on waiting bytes")
    func limitStillHolds() {
        let pool = BlockPool()
        defer { withExtendedLifetime(pool) {} }  // the queue holds it unowned
        let queue = ByteQueue(pool: pool)
        var waiting = 1 << 20
        var next: UInt8 = 0
        #expect(Self.read(queue, waiting: &waiting, next: &next, limit: 20_000) == BlockPool.blockSize)
        // 16 KiB waiting, 20,000 allowed: 3,616 more at most.
        #expect(Self.read(queue, waiting: &waiting, next: &next, limit: 20_000) == 20_000 - BlockPool.blockSize)
        #expect(queue.count == 20_000)
    }

    @Test("the pool hands back the blocks it was given, small and large")
    func poolReusesBlocks() {
        let pool = BlockPool()
        let small = pool.take(atLeast: 100)
        let large = pool.take(atLeast: BlockPool.blockSize + 1)
        #expect(small.count == BlockPool.blockSize)
        #expect(large.count == BlockPool.largeBlockSize)
        pool.give(small)
        pool.give(large)
        #expect(pool.take(atLeast: 1).baseAddress == small.baseAddress)
        #expect(pool.take(atLeast: BlockPool.largeBlockSize).baseAddress == large.baseAddress)
        // Larger than a large block: made to the size asked for (and not kept when given back).
        let huge = pool.take(atLeast: BlockPool.largeBlockSize + 1)
        #expect(huge.count == BlockPool.largeBlockSize + 1)
        pool.give(huge)
        #expect(pool.take(atLeast: BlockPool.largeBlockSize + 1).count == BlockPool.largeBlockSize + 1)
        pool.freeAll()
    }

    @Test("bytes read in any pattern of reads and partial consumption come out whole and in order")
    func bytesInOrder() async {
        let sizes = Gen.int(in: 1...90_000).array(of: 1...12)
        let takes = Gen.int(in: 0...70_000).array(of: 12)
        await propertyCheck(count: 60, input: sizes, takes) { sizes, takes in
            let pool = BlockPool()
            defer { withExtendedLifetime(pool) {} }  // the queue holds it unowned
            let queue = ByteQueue(pool: pool)
            var next: UInt8 = 0
            var expected: UInt8 = 0
            var inOrder = true
            func check(_ bytes: some Sequence<UInt8>) {
                for byte in bytes {
                    inOrder = inOrder && byte == expected
                    expected &+= 1
                }
            }
            for (index, size) in sizes.enumerated() {
                var waiting = size
                while waiting > 0 {
                    guard queue.count < 256 * 1024 else { break }
                    _ = Self.read(queue, waiting: &waiting, next: &next)
                }
                // Some of what waits is handled, the rest stays for later.
                let take = min(takes[index], queue.count)
                check(queue.bytes.prefix(take))
                queue.consume(take)
            }
            check(queue.bytes)
            #expect(inOrder)
            #expect(expected == next)
        }
    }
}
#endif
