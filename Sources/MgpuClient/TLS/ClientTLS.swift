import NIOSSL

/// How a client (the CLI or an agent) talks TLS to a master started with `--tls-cert/--tls-key`.
public struct ClientTLS: Sendable {
    let context: NIOSSLContext

    /// Trusts the CA certificate(s) in the PEM file `caCertificate`, or the system's roots when nil. With
    /// `verifyHostname` off, any certificate that chains to those roots is accepted whatever name it carries
    /// (for `mgpu up`'s own agent, which dials its master on loopback and trusts exactly its certificate).
    public init(caCertificate: String?, verifyHostname: Bool = true) throws(TLSSetupError) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caCertificate {
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caCertificate))
            } catch {
                throw TLSSetupError("cannot read the CA certificate \(caCertificate): \(error)")
            }
        }
        if !verifyHostname { configuration.certificateVerification = .noHostnameVerification }
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSSetupError("cannot set up TLS: \(error)")
        }
    }

    func handler(host: String) throws -> NIOSSLClientHandler {
        // SNI and the name check take a host name; for an address the certificate's IP SAN is checked.
        try NIOSSLClientHandler(context: context, serverHostname: Self.isAddress(host) ? nil : host)
    }

    static func isAddress(_ host: String) -> Bool {
        host.contains(":") || host.split(separator: ".").count == 4 && host.split(separator: ".").allSatisfy { UInt8($0) != nil }
    }
}

/// A TLS setting that cannot work (an unreadable CA file, a bad certificate), in one line.
public struct TLSSetupError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
