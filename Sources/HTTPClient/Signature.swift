import COpenSSL

/// HMAC-SHA256 through the system libcrypto.
public enum HMACSHA256 {
    /// The 32-byte MAC of `message` under `key`.
    public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        key.withUnsafeBufferPointer { keyBytes in
            message.withUnsafeBufferPointer { messageBytes in
                // HMAC accepts a NULL key pointer only with length 0; an empty array may have no base address.
                let keyPointer = UnsafeRawPointer(keyBytes.baseAddress) ?? UnsafeRawPointer(bitPattern: 1)!
                _ = HMAC(EVP_sha256(), keyBytes.isEmpty ? nil : keyPointer, Int32(keyBytes.count),
                         messageBytes.baseAddress, messageBytes.count, &out, &length)
            }
        }
        return Array(out.prefix(Int(length)))
    }

    public static func hex(key: [UInt8], message: [UInt8]) -> String {
        mac(key: key, message: message).map { byte in
            let digits = Array("0123456789abcdef")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
        }.joined()
    }
}

/// The `Faultline-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
///
/// A receiver recomputes the MAC over the timestamp, a dot and the raw body with the shared
/// secret, compares in constant time, and refuses timestamps more than five minutes away from
/// its clock (the replay window).
public enum WebhookSignature {
    public static let headerName = "Faultline-Signature"
    public static let replayWindowSeconds = 300

    public static func header(secret: String, timestamp: Int, body: [UInt8]) -> String {
        "t=\(timestamp),v1=" + HMACSHA256.hex(key: Array(secret.utf8), message: Array("\(timestamp).".utf8) + body)
    }

    /// Whether `header` signs `body` with `secret` within the replay window around `now`.
    public static func verify(header: String, secret: String, body: [UInt8], now: Int) -> Bool {
        var timestamp: Int?
        var signatures: [String] = []
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { continue }
            if pair[0] == "t" { timestamp = Int(pair[1]) } else if pair[0] == "v1" { signatures.append(pair[1]) }
        }
        guard let timestamp, abs(now - timestamp) <= replayWindowSeconds else { return false }
        let expected = Array(self.header(secret: secret, timestamp: timestamp, body: body).split(separator: "=").last!.utf8)
        return signatures.contains { candidate in
            let given = Array(candidate.utf8)
            guard given.count == expected.count else { return false }
            var difference: UInt8 = 0
            for index in given.indices { difference |= given[index] ^ expected[index] }
            return difference == 0
        }
    }
}
