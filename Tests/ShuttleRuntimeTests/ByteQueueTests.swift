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

    /// Bytes numbered from 0 (wrapping), checked to come out in that order.
    struct Order {
        var expected: UInt8 = 0
        var holds = true

        mutating func check(_ bytes: some Sequence<UInt8>) {
            for byte in bytes {
                holds = holds && byte == expected
                expected &+= 1
            }
        }
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
            var order = Order()
            for (index, size) in sizes.enumerated() {
                var waiting = size
                while waiting > 0 {
                    guard queue.count < 256 * 1024 else { break }
                    _ = Self.read(queue, waiting: &waiting, next: &next)
                }
                // Some of what waits is handled, the rest stays for later.
                let take = min(takes[index], queue.count)
                order.check(queue.bytes.prefix(take))
                queue.consume(take)
            }
            order.check(queue.bytes)
            #expect(order.holds)
            #expect(order.expected == next)
        }
    }
    @Test("moving all of a queue's bytes to an empty one hands over its block; anything else is copied")
    func moveHandsOverTheBlock() {
        let pool = BlockPool()
        defer { withExtendedLifetime(pool) {} }  // the queues hold it unowned
        let from = ByteQueue(pool: pool)
        let to = ByteQueue(pool: pool)
        var waiting = 40_000
        var next: UInt8 = 0
        _ = Self.read(from, waiting: &waiting, next: &next)
        from.consume(100)
        let block = from.bytes.baseAddress
        from.move(from.count, to: to)
        // The same memory, now the other queue's: no copy was made.
        #expect(to.bytes.baseAddress == block)
        #expect(to.count == BlockPool.blockSize - 100)
        #expect(to.bytes.first == 100)
        #expect(from.isEmpty)
        // Into a queue that holds bytes: copied after them, and the source keeps its block.
        _ = Self.read(from, waiting: &waiting, next: &next)
        let second = from.bytes.baseAddress
        from.move(10, to: to)
        #expect(to.count == BlockPool.blockSize - 90)
        #expect(to.bytes.baseAddress == block! - 100)  // its bytes moved to the front of the same block
        #expect(Array(to.bytes.suffix(10)) == (0..<10).map { UInt8(truncatingIfNeeded: BlockPool.blockSize + $0) })
        #expect(from.bytes.baseAddress == second! + 10)
        // Part of a queue into an empty one: copied too.
        to.consume(to.count)
        from.move(5, to: to)
        #expect(to.bytes.baseAddress != from.bytes.baseAddress! - 5)
        #expect(Array(to.bytes) == (10..<15).map { UInt8(truncatingIfNeeded: BlockPool.blockSize + $0) })
    }

    @Test("bytes moved between two queues in any pattern come out whole and in order")
    func movedBytesInOrder() async {
        let sizes = Gen.int(in: 1...90_000).array(of: 1...12)
        let moves = Gen.int(in: 0...70_000).array(of: 12)
        let takes = Gen.int(in: 0...70_000).array(of: 12)
        await propertyCheck(count: 60, input: sizes, moves, takes) { sizes, moves, takes in
            let pool = BlockPool()
            defer { withExtendedLifetime(pool) {} }  // the queues hold it unowned
            let from = ByteQueue(pool: pool)
            let to = ByteQueue(pool: pool)
            var next: UInt8 = 0
            var order = Order()
            for (index, size) in sizes.enumerated() {
                var waiting = size
                while waiting > 0 {
                    guard from.count < 256 * 1024 else { break }
                    _ = Self.read(from, waiting: &waiting, next: &next)
                }
                // Some (often all) of it moves on; some of what arrived is written out.
                let move = moves[index] % 3 == 0 ? from.count : min(moves[index], from.count)
                from.move(move, to: to)
                let take = min(takes[index], to.count)
                order.check(to.bytes.prefix(take))
                to.consume(take)
            }
            order.check(to.bytes)
            order.check(from.bytes)
            #expect(order.holds)
            #expect(order.expected == next)
        }
    }
}
#endif
