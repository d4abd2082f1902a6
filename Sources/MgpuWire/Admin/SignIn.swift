/// Who a token belongs to (`GET /v1/whoami`).
public struct WhoAmIResponse: Codable, Sendable, Equatable {
    public var name: String
    public var admin: Bool
    public init(name: String, admin: Bool) { self.name = name; self.admin = admin }
}

/// A one-time sign-in code for the dashboard (`POST /v1/signin/codes`, by a signed-in user).
public struct SignInCodeResponse: Codable, Sendable {
    public var code: String
    /// Seconds it works for.
    public var expiresIn: Double
    public init(code: String, expiresIn: Double) { self.code = code; self.expiresIn = expiresIn }
}

/// `POST /v1/signin`: a code exchanged, once, for its user's token.
public struct SignInRequest: Codable, Sendable {
    public var code: String
    public init(code: String) { self.code = code }
}

public struct SignInResponse: Codable, Sendable {
    public var name: String
    public var admin: Bool
    public var token: String
    public init(name: String, admin: Bool, token: String) { self.name = name; self.admin = admin; self.token = token }
}
