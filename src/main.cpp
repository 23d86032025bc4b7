#include "cli/app.hpp"

int main(int argc, char** argv) {
  return pc::app_main(argc, argv);
}
