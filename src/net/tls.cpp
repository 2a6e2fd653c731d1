#include "net/tls.h"

namespace commentd::net {

Result<std::shared_ptr<asio::ssl::context>> make_client_context(const TlsFiles& f, std::string_view who) {
  namespace ssl = asio::ssl;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  boost::system::error_code ec;
  auto refuse = [&](std::string what) {
    return Error(Errc::bad_request, std::string(who) + ": " + what + (ec ? ": " + ec.message() : ""), "bad_config");
  };
  ctx->set_verify_mode(ssl::verify_peer, ec);
  if (f.ca_file.empty()) {
    if (ctx->set_default_verify_paths(ec); ec) return refuse("the system's roots");
  } else if (ctx->load_verify_file(f.ca_file, ec); ec) {
    return refuse("ca_file " + f.ca_file);
  }
  if (f.cert_file.empty() != f.key_file.empty()) return refuse("cert_file and key_file go together");
  if (!f.cert_file.empty()) {
    if (ctx->use_certificate_chain_file(f.cert_file, ec); ec) return refuse("cert_file " + f.cert_file);
    // OpenSSL checks the key against the certificate as it loads it.
    if (ctx->use_private_key_file(f.key_file, ssl::context::pem, ec); ec) return refuse("key_file " + f.key_file);
  }
  return ctx;
}

}  // namespace commentd::net
