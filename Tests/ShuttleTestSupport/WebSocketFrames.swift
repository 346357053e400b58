import Crypto
import Foundation

/// Just enough of WebSocket (RFC 6455) for tests: the handshake's accept
/// value and single text frames, masked as a client sends them or not.
public enum WebSocketFrames {
    /// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
    public static func acceptValue(for key: String) -> String {
        let digest = Insecure.SHA1.hash(data: Data((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        return Data(digest).base64EncodedString()
    }

    /// One final text frame.
    public static func text(_ text: String, masked: Bool) -> [UInt8] {
        let payload = Array(text.utf8)
        var frame: [UInt8] = [0x81]
        let maskBit: UInt8 = masked ? 0x80 : 0
        if payload.count < 126 {
            frame.append(maskBit | UInt8(payload.count))
        } else {
            frame.append(maskBit | 126)
            frame.append(UInt8(payload.count >> 8))
            frame.append(UInt8(payload.count & 0xff))
        }
        if masked {
            let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
            frame += mask
            frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        } else {
            frame += payload
        }
        return frame
    }

    /// The text of the first complete frame in `bytes` and its length.
    public static func parse(_ bytes: [UInt8]) -> (String, Int)? {
        guard bytes.count >= 2 else { return nil }
        let masked = bytes[1] & 0x80 != 0
        var length = Int(bytes[1] & 0x7f)
        var position = 2
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            position = 4
        }
        var mask: [UInt8] = [0, 0, 0, 0]
        if masked {
            guard bytes.count >= position + 4 else { return nil }
            mask = Array(bytes[position..<(position + 4)])
            position += 4
        }
        guard bytes.count >= position + length else { return nil }
        let payload = bytes[position..<(position + length)].enumerated().map { $0.element ^ mask[$0.offset % 4] }
        return (String(decoding: payload, as: UTF8.self), position + length)
    }
}
