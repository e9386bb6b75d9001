// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestToken
/// @notice A freely mintable ERC-20 for local chains and tests only; never deploy it to a public network.
contract TestToken is ERC20 {
    constructor() ERC20("Attesta Test Token", "ATT") {}

    /// @notice Mints `amount` to `to`; anyone may call (faucet for local chains).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
