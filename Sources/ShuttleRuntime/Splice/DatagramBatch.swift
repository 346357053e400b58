#if os(Linux)
import CShuttleSplice
import Glibc

/// A relay loop's room for datagrams: `count` slots of `size` bytes that
/// one recvmmsg fills, with each one's length and sender, and one more
/// buffer for a backend's replies. Allocated when the loop gets its first
/// UDP service; only the pages datagrams are written to take memory.
final class DatagramBatch {
    /// Room for the largest UDP datagram (65,507 bytes over IPv4, 65,527
    /// over IPv6): none is cut.
    static let size = 65_536
    static let count = 16

    let area = UnsafeMutableRawPointer.allocate(byteCount: DatagramBatch.size * DatagramBatch.count, alignment: 64)
    let reply = UnsafeMutableRawPointer.allocate(byteCount: DatagramBatch.size, alignment: 64)
    let lengths = UnsafeMutablePointer<Int>.allocate(capacity: DatagramBatch.count)
    let senders = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: DatagramBatch.count)
    let senderLengths = UnsafeMutablePointer<UInt32>.allocate(capacity: DatagramBatch.count)
    let truncated = UnsafeMutablePointer<UInt8>.allocate(capacity: DatagramBatch.count)

    /// Reads up to `count` datagrams from `fd`: how many came, or -1 and errno.
    func receive(from fd: Int32) -> Int {
        Int(
            cshuttle_receive_datagrams(
                fd, area, Self.size, Int32(Self.count), lengths, UnsafeMutableRawPointer(senders), senderLengths, truncated))
    }

    func slot(_ index: Int) -> UnsafeMutableRawPointer { area + index * Self.size }

    deinit {
        area.deallocate()
        reply.deallocate()
        lengths.deallocate()
        senders.deallocate()
        senderLengths.deallocate()
        truncated.deallocate()
    }
}

/// A UDP client's address as a dictionary key: family, port and address.
struct FlowKey: Hashable {
    var first: UInt64
    var second: UInt64
    var third: UInt64

    init?(_ sender: UnsafePointer<sockaddr_storage>) {
        switch Int32(sender.pointee.ss_family) {
        case AF_INET:
            let v4 = UnsafeRawPointer(sender).load(as: sockaddr_in.self)
            first = UInt64(AF_INET) << 48 | UInt64(v4.sin_port) << 32 | UInt64(v4.sin_addr.s_addr)
            second = 0
            third = 0
        case AF_INET6:
            let v6 = UnsafeRawPointer(sender).load(as: sockaddr_in6.self)
            first = UInt64(AF_INET6) << 48 | UInt64(v6.sin6_port) << 32 | UInt64(v6.sin6_scope_id)
            var address = v6.sin6_addr
            (second, third) = withUnsafeBytes(of: &address) { ($0.load(fromByteOffset: 0, as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt64.self)) }
        default:
            return nil
        }
    }
}
#endif
