#if os(Linux)
import Glibc
import PropertyBased
import Testing

@testable import ShuttleRuntime

/// A blocking UDP socket on a free port of 127.0.0.1, for the batch's sends.
private final class UDPSocket {
    let fd: Int32
    let address: sockaddr_in

    init(options: [(level: Int32, name: Int32)] = []) throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(fd >= 0)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        for option in options {
            try #require(setsockopt(fd, option.level, option.name, &one, 4) == 0, "setsockopt \(option)")
        }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        try #require(bound)
        self.fd = fd
        address = local
    }

    /// Connects the socket to `peer` (its sends then need no address).
    func connect(to peer: sockaddr_in) throws {
        var peer = peer
        let done = withUnsafePointer(to: &peer) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        try #require(done == 0)
    }

    /// The next datagram (waiting up to 5 s), or nil if none came.
    func receive() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n < 0 ? nil : Array(buffer[..<n])
    }

    /// Whether a datagram is waiting, without waiting.
    var hasMore: Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_DONTWAIT | MSG_PEEK)) >= 0
    }

    deinit { close(fd) }
}

/// Datagram `index` of a test: `length` bytes that tell it from the others.
private func payload(_ index: Int, length: Int) -> [UInt8] {
    (0..<length).map { UInt8(truncatingIfNeeded: index &* 31 &+ $0 &* 7) }
}

/// Puts `datagrams` in the batch's slots and its outgoing list, each
/// addressed to its receiver.
private func fill(_ batch: DatagramBatch, _ datagrams: [(bytes: [UInt8], to: sockaddr_in)]) {
    for (index, datagram) in datagrams.enumerated() {
        datagram.bytes.withUnsafeBytes { batch.slot(index).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        batch.outgoing[index] = batch.slot(index)
        batch.outgoingLengths[index] = datagram.bytes.count
        UnsafeMutableRawPointer(batch.addresses + index).storeBytes(of: datagram.to, as: sockaddr_in.self)
        batch.addressLengths[index] = UInt32(MemoryLayout<sockaddr_in>.size)
    }
}

private let SOL_UDP: Int32 = 17
private let UDP_GRO: Int32 = 104

@Suite("Datagram batches: sent whole, in order, runs segmented where the path allows")
struct DatagramBatchTests {
    /// Lengths that make runs (equal ones, a shorter one ending a run) and
    /// break them (a longer one, an empty datagram).
    static let lengths = [0, 1, 7, 512, 512, 1_400, 1_400, 3_000]

    @Test("every receiver gets exactly its datagrams, in order, each whole")
    func everyDatagramArrivesWhole() async throws {
        let picks = Gen.int(in: 0...(Self.lengths.count - 1)).array(of: 1...DatagramBatch.count)
        let destinations = Gen.int(in: 0...2).array(of: DatagramBatch.count)
        await propertyCheck(count: 120, input: picks, destinations, Gen.bool) { picks, destinations, connected in
            do {
                let sender = try UDPSocket()
                let receivers = [try UDPSocket(), try UDPSocket(), try UDPSocket()]
                // A connected socket sends everything to its one peer.
                let to = picks.indices.map { connected ? 0 : destinations[$0] }
                if connected { try sender.connect(to: receivers[0].address) }
                let datagrams = picks.enumerated().map { index, pick in
                    (bytes: payload(index, length: Self.lengths[pick]), to: receivers[to[index]].address)
                }
                let batch = DatagramBatch()
                fill(batch, datagrams)
                var segmentation: Int32 = 1
                let sent = batch.sendOutgoing(
                    on: sender.fd, count: datagrams.count, addressed: !connected, segmentation: &segmentation)
                #expect(sent == datagrams.count)
                #expect(segmentation == 1, "loopback takes segmented sends")
                for (r, receiver) in receivers.enumerated() {
                    let expected = datagrams.indices.filter { to[$0] == r }.map { datagrams[$0].bytes }
                    let got = expected.indices.map { _ in receiver.receive() }
                    let whole = got == expected.map { Optional($0) }
                    #expect(
                        whole,
                        "receiver \(r) got lengths \(got.map { $0?.count ?? -1 }) for \(expected.map(\.count)), to \(to)")
                    #expect(!receiver.hasMore, "receiver \(r) got more than was sent to it")
                }
            } catch {
                Issue.record(error)
            }
        }
    }

    @Test("a run of equal datagrams is sent once: a receiver that takes GRO reads it in one piece")
    func runsAreSegmented() throws {
        let sender = try UDPSocket()
        let receiver = try UDPSocket(options: [(SOL_UDP, UDP_GRO)])
        let datagrams = (0..<5).map { (bytes: payload($0, length: 1_000), to: receiver.address) }
        let batch = DatagramBatch()
        fill(batch, datagrams)
        var segmentation: Int32 = 1
        #expect(batch.sendOutgoing(on: sender.fd, count: 5, addressed: true, segmentation: &segmentation) == 5)
        let first = receiver.receive()
        #expect(first == datagrams.flatMap(\.bytes), "one read of \(first?.count ?? -1) bytes: the five datagrams back to back")
        #expect(!receiver.hasMore)
        // Not segmented: the same receiver reads them one by one.
        segmentation = 0
        #expect(batch.sendOutgoing(on: sender.fd, count: 5, addressed: true, segmentation: &segmentation) == 5)
        for datagram in datagrams { #expect(receiver.receive() == datagram.bytes) }
        #expect(!receiver.hasMore)
    }

    @Test("a socket that cannot send segmented gets its datagrams one by one and is not asked again")
    func segmentationRefused() throws {
        // Without UDP checksums (SO_NO_CHECK) the kernel refuses UDP GSO.
        let sender = try UDPSocket(options: [(SOL_SOCKET, SO_NO_CHECK)])
        let receiver = try UDPSocket()
        let other = try UDPSocket()
        // One datagram to another receiver first: the refused run is not the first message.
        let datagrams =
            [(bytes: payload(0, length: 10), to: other.address)]
            + (1...4).map { (bytes: payload($0, length: 600), to: receiver.address) }
        let batch = DatagramBatch()
        fill(batch, datagrams)
        var segmentation: Int32 = 1
        #expect(batch.sendOutgoing(on: sender.fd, count: 5, addressed: true, segmentation: &segmentation) == 5)
        #expect(segmentation == 0)
        #expect(other.receive() == datagrams[0].bytes)
        for datagram in datagrams.dropFirst() { #expect(receiver.receive() == datagram.bytes) }
        #expect(!receiver.hasMore && !other.hasMore)
    }
}
#endif
