#if os(Linux)
import CShuttleSplice
import Glibc

/// Room for a batch of datagrams: `count` slots of `size` bytes that one
/// recvmmsg fills (each with its length and address), and what one
/// sendmmsg needs to send some of them. A relay loop has one for what its
/// UDP services read; each service has one for the replies it sends back.
/// Only the pages datagrams are written to take memory.
final class DatagramBatch {
    /// Room for the largest UDP datagram (65,507 bytes over IPv4, 65,527
    /// over IPv6): none is cut.
    static let size = 65_536
    static let count = 16

    let area = UnsafeMutableRawPointer.allocate(byteCount: DatagramBatch.size * DatagramBatch.count, alignment: 64)
    let lengths = UnsafeMutablePointer<Int>.allocate(capacity: DatagramBatch.count)
    /// Senders of what was read; destinations of what is sent.
    let addresses = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: DatagramBatch.count)
    let addressLengths = UnsafeMutablePointer<UInt32>.allocate(capacity: DatagramBatch.count)
    let truncated = UnsafeMutablePointer<UInt8>.allocate(capacity: DatagramBatch.count)
    /// What a send takes: the datagrams' places and lengths, in order.
    let outgoing = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: DatagramBatch.count)
    let outgoingLengths = UnsafeMutablePointer<Int>.allocate(capacity: DatagramBatch.count)
    /// Slots in use (a batch of replies being gathered).
    var used = 0

    func slot(_ index: Int) -> UnsafeMutableRawPointer { area + index * Self.size }

    /// Reads into the slots from `first` on: how many came, or -1 and errno.
    /// Fewer than there was room for: the socket is empty.
    func receive(from fd: Int32, first: Int = 0) -> Int {
        Int(
            cshuttle_receive_datagrams(
                fd, slot(first), Self.size, Int32(Self.count - first), lengths + first,
                UnsafeMutableRawPointer(addresses + first), addressLengths + first, truncated + first))
    }

    /// Sends the first `count` of `outgoing` to the socket's peer, or each
    /// to its slot's address: how many went or were dropped, or -1 and errno.
    /// Runs of one length to one place go segmented (UDP GSO) while
    /// `segmentation` is nonzero; a path that cannot take them sets it to 0.
    @discardableResult
    func sendOutgoing(on fd: Int32, count: Int, addressed: Bool, segmentation: inout Int32) -> Int {
        Int(
            cshuttle_send_datagrams(
                fd, outgoing, outgoingLengths, addressed ? UnsafeRawPointer(addresses) : nil,
                addressed ? addressLengths : nil, Int32(count), &segmentation))
    }

    deinit {
        area.deallocate()
        lengths.deallocate()
        addresses.deallocate()
        addressLengths.deallocate()
        truncated.deallocate()
        outgoing.deallocate()
        outgoingLengths.deallocate()
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
            (second, third) = withUnsafeBytes(of: &address) {
                ($0.load(fromByteOffset: 0, as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt64.self))
            }
        default:
            return nil
        }
    }
}
#endif
