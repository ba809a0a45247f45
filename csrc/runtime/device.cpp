#include "device.h"

#include <c10/util/Exception.h>
#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

namespace biren {
namespace {

constexpr int kDefaultCards = 8;  // one 8-card server
std::atomic<int> instances_per_card{1};
std::atomic<bool> initialized{false};
std::atomic<bool> bad_fork{false};
thread_local c10::DeviceIndex tls_device = 0;

std::atomic<bool> unavailable{false};
std::string unavailable_reason;  // written once, before `unavailable` is set

// CUDA's rule for CUDA_VISIBLE_DEVICES: the cards listed up to the first entry that is not a card
// index of the server (so "-1" or "" hides every card); unset shows all.
int visible_cards() {
  static const int cards = [] {
    const char* env = std::getenv("BIREN_VISIBLE_DEVICES");
    if (env == nullptr) return kDefaultCards;
    std::stringstream ss(env);
    std::string item;
    std::vector<bool> seen(kDefaultCards, false);
    int n = 0;
    while (std::getline(ss, item, ',')) {
      auto b = item.find_first_not_of(' '), e = item.find_last_not_of(' ');
      item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
      bool digits = !item.empty() && item.size() < 4 && item.find_first_not_of("0123456789") == std::string::npos;
      int card = digits ? std::stoi(item) : -1;
      if (card < 0 || card >= kDefaultCards || seen[card]) {
        // "-1" is the idiom for hiding the rest; anything else is worth a word.
        if (!item.empty() && item != "-1")
          TORCH_WARN("BIREN_VISIBLE_DEVICES='", env, "': '", item, "' is not a card index of this ", kDefaultCards,
                     "-card server (0-", kDefaultCards - 1, ", each once); the cards listed before it are visible (",
                     n, "), as CUDA_VISIBLE_DEVICES would have it");
        break;
      }
      seen[card] = true;
      ++n;
    }
    return n;
  }();
  return cards;
}

std::string no_devices_reason() {
  if (unavailable.load()) return unavailable_reason;
  const char* env = std::getenv("BIREN_VISIBLE_DEVICES");
  return std::string("BIREN_VISIBLE_DEVICES='") + (env ? env : "") + "' hides every card";
}

void on_fork_child() {
  if (initialized.load()) bad_fork = true;
}

}  // namespace

c10::DeviceIndex device_count() {
  if (unavailable.load()) return 0;
  return static_cast<c10::DeviceIndex>(visible_cards() * instances_per_card.load());
}

void set_instances_per_card(int n) {
  TORCH_CHECK(n == 1 || n == 2 || n == 4, "a card splits into 1, 2 or 4 instances, got ", n);
  instances_per_card = n;
}

void set_unavailable(const std::string& reason) {
  static std::once_flag once;
  std::call_once(once, [&] {
    unavailable_reason = reason;
    unavailable = true;
  });
}

void check_device_index(c10::DeviceIndex index) {
  TORCH_CHECK(device_count() > 0, "No biren GPUs are available (", no_devices_reason(), ")");
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
  TORCH_CHECK(device_count() > 0, "No biren GPUs are available (", no_devices_reason(), ")");
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(nullptr, nullptr, on_fork_child); });
  initialized = true;
}

bool is_initialized() { return initialized.load(); }
bool in_bad_fork() { return bad_fork.load(); }

}  // namespace biren
