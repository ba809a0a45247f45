#include "device.h"

#include <c10/util/Exception.h>
#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>

namespace biren {
namespace {

constexpr int kDefaultCards = 8;  // one 8-card server
std::atomic<int> instances_per_card{1};
std::atomic<bool> initialized{false};
std::atomic<bool> bad_fork{false};
thread_local c10::DeviceIndex tls_device = 0;

int visible_cards() {
  static const int cards = [] {
    const char* env = std::getenv("BIREN_VISIBLE_DEVICES");
    if (env == nullptr) return kDefaultCards;
    std::string s(env);
    if (s.find_first_not_of(" ") == std::string::npos) return 0;
    int n = 0;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
      TORCH_CHECK(!item.empty() && item.find_first_not_of("0123456789 ") == std::string::npos,
                  "BIREN_VISIBLE_DEVICES must be a comma-separated list of card indices, got '", s, "'");
      ++n;
    }
    return n;
  }();
  return cards;
}

void on_fork_child() {
  if (initialized.load()) bad_fork = true;
}

}  // namespace

c10::DeviceIndex device_count() {
  return static_cast<c10::DeviceIndex>(visible_cards() * instances_per_card.load());
}

void set_instances_per_card(int n) {
  TORCH_CHECK(n == 1 || n == 2 || n == 4, "a card splits into 1, 2 or 4 instances, got ", n);
  instances_per_card = n;
}

void check_device_index(c10::DeviceIndex index) {
  TORCH_CHECK(index >= 0 && index < device_count(),
              "biren error: invalid device ordinal: device biren:", static_cast<int>(index),
              " requested but ", static_cast<int>(device_count()),
              " biren device(s) are visible (BIREN_VISIBLE_DEVICES selects them)");
}

c10::DeviceIndex current_device() { return tls_device; }

void set_current_device(c10::DeviceIndex index) {
  check_device_index(index);
  tls_device = index;
}

void lazy_init() {
  TORCH_CHECK(!bad_fork.load(),
              "Cannot re-initialize biren in forked subprocess. To use biren with multiprocessing, "
              "you must use the 'spawn' start method");
  if (initialized.load()) return;
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(nullptr, nullptr, on_fork_child); });
  initialized = true;
}

bool is_initialized() { return initialized.load(); }
bool in_bad_fork() { return bad_fork.load(); }

}  // namespace biren
