#pragma once
// A PrefectClient over the FakeTransport: the scripted world of the client,
// cycle and worker tests.

#include "http/fake_transport.hpp"
#include "prefect/client.hpp"

namespace pc::testing {

struct FakeClient {
  FakeTransport transport;
  FakeSleeper sleeper;
  ApiClient api{transport, ApiOptions{"http://h/api", "", "", std::chrono::seconds(5)},
                Logger::null(), RetryPolicy{}, sleeper};
  PrefectClient client{api};
};

}  // namespace pc::testing
